"""One class per notification channel kind on a shared base.

Each transport validates its channel's config, names its secret fields (write-only
in the API) and sends an Alertmanager-shaped payload, raising ``TransportError``
with ``permanent=True`` when retrying cannot help (bad credentials, 4xx).
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any
from urllib.parse import urlparse

from alerting_worker.alerting import egress

log = logging.getLogger(__name__)

HTTP_TIMEOUT = 10.0
SMTP_TIMEOUT = 15.0
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
DEFAULT_AM_TTL = 3 * 4 * 3600  # three default repeat intervals
PD_SEVERITY = {"critical": "critical", "high": "error", "medium": "warning", "low": "info", "info": "info"}


class TransportError(Exception):
    """A delivery failed; ``permanent`` means retrying will not help."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


class Transport:
    """Base: subclasses set ``kind``, ``secret_fields`` and implement ``validate_config`` and ``send``."""

    kind = ""
    secret_fields: tuple[str, ...] = ()
    # Where the secrets go: changing one of these requires every stored secret again.
    destination_fields: tuple[str, ...] = ()

    def validate_config(self, config: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def send(self, config: dict[str, Any], payload: dict[str, Any], idempotency_key: str) -> str:
        """Deliver; return a short description of the response."""
        raise NotImplementedError


def _require_url(config: dict[str, Any], key: str) -> str:
    """Return the http(s) URL under ``key``; refuse one whose host is not a public address."""
    url = config.get(key)
    if not isinstance(url, str) or urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc:
        raise ValueError(f"{key} must be an http(s) URL")
    egress.check_url(url, key, resolve_now=False)
    return url


def max_redirects() -> int:
    """Redirects a channel's HTTP request follows (setting NOTIFY_MAX_REDIRECTS, 0 by default)."""
    try:
        from django.conf import settings

        return int(getattr(settings, "NOTIFY_MAX_REDIRECTS", 0))
    except Exception:  # outside Django
        return 0


class HttpTransport(Transport):
    """POST JSON through the egress guard; 5xx, 429 and network errors are transient, other 4xx permanent.

    The description of an answer is its status and status class only: the remote body never
    reaches a caller (a test send must not turn a channel into a way of reading internal pages).
    """

    def post(self, url: str, body: dict[str, Any] | list[Any], headers: dict[str, str] | None = None) -> str:
        data = json.dumps(body).encode()
        try:
            answer = egress.post(
                url,
                data,
                {"Content-Type": "application/json", **(headers or {})},
                timeout=HTTP_TIMEOUT,
                max_redirects=max_redirects(),
            )
        except egress.EgressError as exc:
            raise TransportError(exc.message, permanent=exc.permanent) from None
        if answer.status >= 400:
            permanent = answer.status < 500 and answer.status not in (408, 429)
            raise TransportError(f"HTTP {answer.status} ({answer.status_class})", permanent=permanent)
        return f"HTTP {answer.status} ({answer.status_class})"


class WebhookTransport(HttpTransport):
    """Generic webhook: the Alertmanager webhook payload (version 4), so its receivers work unchanged."""

    kind = "webhook"
    secret_fields = ("url", "headers")
    destination_fields = ("url",)

    def validate_config(self, config: dict[str, Any]) -> dict[str, Any]:
        headers = config.get("headers", {})
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise ValueError("headers must be an object of strings")
        return {"url": _require_url(config, "url"), "headers": headers}

    def send(self, config: dict[str, Any], payload: dict[str, Any], idempotency_key: str) -> str:
        headers = {**config.get("headers", {}), "Idempotency-Key": idempotency_key}
        return self.post(config["url"], payload, headers)


class AlertmanagerTransport(HttpTransport):
    """An Alertmanager: each alert POSTed to ``<url>/api/v2/alerts`` as Prometheus would send it.

    A firing alert's ``endsAt`` is the send time plus ``ttl_seconds`` (set by the channel to
    three repeat intervals), so Alertmanager resolves it by itself if fleetwatch stops
    re-sending it; a resolved alert carries its real end, which resolves it at once.
    """

    kind = "alertmanager"
    secret_fields = ("headers",)
    API_PATH = "/api/v2/alerts"

    def validate_config(self, config: dict[str, Any]) -> dict[str, Any]:
        headers = config.get("headers", {})
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise ValueError("headers must be an object of strings")
        url = _require_url(config, "url").rstrip("/")
        if url.endswith(self.API_PATH):
            url = url[: -len(self.API_PATH)]
        ttl = config.get("ttl_seconds")
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 60):
            raise ValueError("ttl_seconds must be an integer of at least 60")
        return {"url": url, "headers": headers, **({"ttl_seconds": ttl} if ttl is not None else {})}

    def send(self, config: dict[str, Any], payload: dict[str, Any], idempotency_key: str) -> str:
        sent_at = _parse_time(payload["sentAt"])
        ttl = timedelta(seconds=config.get("ttl_seconds") or DEFAULT_AM_TTL)
        alerts = []
        for alert in payload["alerts"]:
            ends = alert["endsAt"] if alert["status"] == "resolved" else _rfc3339(sent_at + ttl)
            alerts.append(
                {
                    "labels": alert["labels"],
                    "annotations": alert["annotations"],
                    "startsAt": alert["startsAt"],
                    "endsAt": ends,
                    "generatorURL": alert["generatorURL"],
                }
            )
        return self.post(config["url"] + self.API_PATH, alerts, config.get("headers"))


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class SlackTransport(HttpTransport):
    """Slack incoming webhook: a text summary plus one attachment per alert."""

    kind = "slack"
    secret_fields = ("webhook_url",)
    destination_fields = ("webhook_url",)
    COLORS = {"firing": "#d63232", "resolved": "#36a64f"}

    def validate_config(self, config: dict[str, Any]) -> dict[str, Any]:
        channel = config.get("channel", "")
        if not isinstance(channel, str):
            raise ValueError("channel must be a string")
        return {"webhook_url": _require_url(config, "webhook_url"), "channel": channel}

    def send(self, config: dict[str, Any], payload: dict[str, Any], idempotency_key: str) -> str:
        body: dict[str, Any] = {"text": title(payload), "attachments": []}
        for alert in payload["alerts"]:
            attachment = {
                "color": self.COLORS.get(alert["status"], "#cccccc"),
                "title": f"[{alert['status'].upper()}] {alert['labels'].get('alertname', '')}",
                "text": alert["annotations"].get("summary", ""),
                "fields": [
                    {"title": k, "value": v, "short": True} for k, v in sorted(alert["labels"].items())
                ],
            }
            logs_url = alert["annotations"].get("logs_url")
            if logs_url:  # log_count alerts link to the records of their window
                attachment["title_link"] = logs_url
                attachment["text"] += f"\n<{logs_url}|Log records>"
            body["attachments"].append(attachment)
        if config.get("channel"):
            body["channel"] = config["channel"]
        return self.post(config["webhook_url"], body)


class PagerDutyTransport(HttpTransport):
    """PagerDuty Events API v2: one trigger/resolve event per alert, deduplicated by its labels."""

    kind = "pagerduty"
    secret_fields = ("routing_key",)
    destination_fields = ("url",)

    def validate_config(self, config: dict[str, Any]) -> dict[str, Any]:
        key = config.get("routing_key")
        if not isinstance(key, str) or len(key) < 8:
            raise ValueError("routing_key (the integration key) is required")
        url = config.get("url") or PAGERDUTY_URL
        return {"routing_key": key, "url": _require_url({"url": url}, "url")}

    def send(self, config: dict[str, Any], payload: dict[str, Any], idempotency_key: str) -> str:
        responses = []
        for alert in payload["alerts"]:
            event = {
                "routing_key": config["routing_key"],
                "event_action": "resolve" if alert["status"] == "resolved" else "trigger",
                "dedup_key": dedup_key(alert["labels"]),
                "payload": {
                    "summary": alert["annotations"].get("summary")
                    or alert["labels"].get("alertname", "alert"),
                    "source": alert["labels"].get("host") or "fleetwatch",
                    "severity": PD_SEVERITY.get(alert["labels"].get("severity", ""), "warning"),
                    "custom_details": {"labels": alert["labels"], "annotations": alert["annotations"]},
                },
            }
            if alert["annotations"].get("logs_url"):
                event["links"] = [{"href": alert["annotations"]["logs_url"], "text": "Log records"}]
            responses.append(self.post(config.get("url") or PAGERDUTY_URL, event))
        return "; ".join(responses)


def dedup_key(labels: dict[str, str]) -> str:
    """PagerDuty's dedup key: the label fingerprint without ``severity``, so a raised severity
    updates the same incident (and its resolve closes it) instead of opening another."""
    from collector_server.alerts.fingerprint import label_fingerprint

    return label_fingerprint({k: v for k, v in labels.items() if k != "severity"})


class EmailTransport(Transport):
    """SMTP with STARTTLS or implicit TLS and optional auth; the Message-ID comes from the idempotency key."""

    kind = "email"
    secret_fields = ("password",)
    destination_fields = ("host", "port")
    SECURITY = ("starttls", "ssl", "none")

    def validate_config(self, config: dict[str, Any]) -> dict[str, Any]:
        host = config.get("host")
        if not isinstance(host, str) or not host:
            raise ValueError("host (the SMTP server) is required")
        port = config.get("port", 587)
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ValueError("port must be an integer 1 … 65535")
        egress.check_host(host, port, "host", resolve_now=False)
        security = config.get("security", "starttls")
        if security not in self.SECURITY:
            raise ValueError(f"security must be one of {', '.join(self.SECURITY)}")
        to = config.get("to")
        if isinstance(to, str):
            to = [x.strip() for x in to.split(",") if x.strip()]
        if not to or not all(isinstance(x, str) and "@" in x for x in to):
            raise ValueError("to must list at least one email address")
        sender = config.get("from")
        if not isinstance(sender, str) or "@" not in sender:
            raise ValueError("from must be an email address")
        return {
            "host": host,
            "port": port,
            "security": security,
            "username": str(config.get("username", "")),
            "password": str(config.get("password", "")),
            "from": sender,
            "to": to,
            "insecure_skip_verify": bool(config.get("insecure_skip_verify", False)),
        }

    def send(self, config: dict[str, Any], payload: dict[str, Any], idempotency_key: str) -> str:
        message = EmailMessage()
        message["Subject"] = title(payload)
        message["From"] = config["from"]
        message["To"] = ", ".join(config["to"])
        message["Message-ID"] = make_msgid(idstring=idempotency_key.replace(":", "."), domain="fleetwatch")
        message.set_content(email_body(payload))
        try:
            with self._connect(config) as smtp:
                if config["username"]:
                    smtp.login(config["username"], config["password"])
                refused = smtp.send_message(message)
        except smtplib.SMTPAuthenticationError as exc:
            raise TransportError(f"SMTP authentication failed: {exc.smtp_code}", permanent=True) from None
        except smtplib.SMTPResponseException as exc:
            # The code only: the server's text is remote content, never shown to a caller.
            raise TransportError(f"SMTP {exc.smtp_code}", permanent=exc.smtp_code >= 500) from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise TransportError(f"all recipients refused: {list(exc.recipients)}", permanent=True) from None
        except ssl.SSLCertVerificationError as exc:
            raise TransportError(
                f"TLS certificate of {config['host']} not trusted: {exc.verify_message} (trust its CA "
                "through SSL_CERT_FILE, or set insecure_skip_verify for a self-signed relay)",
                permanent=True,
            ) from None
        except (egress.TargetRefused, ValueError) as exc:
            raise TransportError(str(exc), permanent=isinstance(exc, egress.TargetRefused)) from None
        except (smtplib.SMTPException, OSError) as exc:
            # One message whatever the cause: a closed port and a non-SMTP one read the same.
            log.info("email: no SMTP session with %s (%s)", config["host"], type(exc).__name__)
            raise TransportError(f"no SMTP session with {config['host']}") from None
        return f"250 accepted ({len(config['to']) - len(refused)} recipients)"

    def _connect(self, config: dict[str, Any]) -> smtplib.SMTP:
        """Open the connection; certificates are verified against the system CAs (or SSL_CERT_FILE)."""
        context = ssl.create_default_context()
        if config.get("insecure_skip_verify"):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        # Checked again now (DNS can change since validation); the connection goes to a checked address.
        addresses = egress.check_host(config["host"], config["port"], "host", resolve_now=True)
        if config["security"] == "ssl":
            return egress.PinnedSMTPSSL(
                addresses, config["host"], config["port"], timeout=SMTP_TIMEOUT, context=context
            )
        smtp = egress.PinnedSMTP(addresses, config["host"], config["port"], timeout=SMTP_TIMEOUT)
        if config["security"] == "starttls":
            try:
                smtp.starttls(context=context)
            except BaseException:
                smtp.close()  # the caller's `with` never gets this connection
                raise
        return smtp


def title(payload: dict[str, Any]) -> str:
    """Return a one-line subject such as '[FIRING:2] High CPU (high)'."""
    firing = [a for a in payload["alerts"] if a["status"] == "firing"]
    status = payload["status"].upper()
    count = f":{len(firing)}" if firing else ""
    labels = payload.get("groupLabels") or {}
    name = labels.get("alertname") or payload.get("commonLabels", {}).get("alertname") or "alerts"
    return f"[{status}{count}] {name}" + (
        f" {labels_text(labels, skip='alertname')}" if len(labels) > 1 else ""
    )


def labels_text(labels: dict[str, str], skip: str = "") -> str:
    return "(" + " ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != skip) + ")"


def email_body(payload: dict[str, Any]) -> str:
    lines = [title(payload), ""]
    for alert in payload["alerts"]:
        lines.append(f"[{alert['status'].upper()}] {alert['annotations'].get('summary', '')}")
        lines.append(f"  labels: {labels_text(alert['labels'])}")
        if alert["annotations"].get("description"):
            lines.append(f"  {alert['annotations']['description']}")
        if alert["annotations"].get("logs_url"):
            lines.append(f"  log records: {alert['annotations']['logs_url']}")
        lines.append(
            f"  since {alert['startsAt']}"
            + (f", ended {alert['endsAt']}" if alert["status"] == "resolved" else "")
        )
        lines.append("")
    return "\n".join(lines)


REGISTRY: dict[str, Transport] = {
    t.kind: t
    for t in (
        EmailTransport(),
        SlackTransport(),
        WebhookTransport(),
        PagerDutyTransport(),
        AlertmanagerTransport(),
    )
}


def get(kind: str) -> Transport:
    try:
        return REGISTRY[kind]
    except KeyError:
        raise ValueError(f"unknown channel kind {kind!r} (use one of {', '.join(REGISTRY)})") from None
