"""The Alertmanager webhook payload (version 4), stored in the outbox and rendered by each transport."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from collector_server.alerts import log_query
from collector_server.alerts.fingerprint import ROOT_ROUTE_KEY, group_key, label_fingerprint
from collector_server.alerts.models import Alert, Channel

# Alertmanager's "no end" for a firing alert: Go's zero time.
ZERO_TIME = "0001-01-01T00:00:00Z"


def _iso(value: datetime | None) -> str:
    """Return an RFC 3339 UTC time ('…Z'), or Go's zero time for none."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else ZERO_TIME


def alert_entry(alert: Alert, status: str, flapping: bool = False) -> dict[str, Any]:
    annotations = {"summary": alert.summary, "description": alert.description, **(alert.annotations or {})}
    if flapping or alert.flapping:
        annotations["flapping"] = "true"
    if alert.value is not None:
        annotations.setdefault("value", f"{alert.value:g}")
    generator = f"{external_url()}/admin/alerts/alert/{alert.pk}/change/"
    logs = log_query.alert_logs_url(alert)
    if logs is not None:  # a log_count alert points at the records that made it fire (the UI page)
        generator = annotations["logs_url"] = f"{external_url()}{logs}"
        annotations["logs_api_url"] = (
            f"{external_url()}{log_query.alert_logs_url(alert, log_query.SEARCH_PATH)}"
        )
    labels = {k: str(v) for k, v in alert.labels.items()}
    return {
        "status": status,
        "labels": labels,
        "annotations": {k: str(v) for k, v in annotations.items() if v != ""},
        "startsAt": _iso(alert.fired_at or alert.started_at),
        "endsAt": _iso(alert.resolved_at) if status == "resolved" else ZERO_TIME,
        "generatorURL": generator,
        "fingerprint": label_fingerprint(labels),
    }


def external_url() -> str:
    """The server's address as users reach it (setting ALERT_EXTERNAL_URL), without a trailing slash."""
    return settings.ALERT_EXTERNAL_URL.rstrip("/")


def _common(dicts: list[dict[str, str]]) -> dict[str, str]:
    if not dicts:
        return {}
    first = dicts[0]
    return {k: v for k, v in first.items() if all(d.get(k) == v for d in dicts[1:])}


def alertmanager(
    channel: Channel,
    key: str,
    group_labels: dict[str, str],
    firing: list[Alert],
    resolved: list[Alert],
    now: datetime,
    flapping: set[str] | None = None,
    route_key: str = ROOT_ROUTE_KEY,
) -> dict[str, Any]:
    """Return the payload Alertmanager would POST for this group (``key`` is fleetwatch's own group key)."""
    flapping = flapping or set()
    alerts = [alert_entry(a, "firing", a.fingerprint in flapping) for a in firing]
    alerts += [alert_entry(a, "resolved") for a in resolved]
    return {
        "version": "4",
        "groupKey": group_key(group_labels, route_key),
        "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved",
        "receiver": channel.name,
        "groupLabels": group_labels,
        "commonLabels": _common([a["labels"] for a in alerts]),
        "commonAnnotations": _common([a["annotations"] for a in alerts]),
        "externalURL": external_url(),
        "alerts": alerts,
        "sentAt": _iso(now),
    }


def test_payload(channel: Channel, now: datetime) -> dict[str, Any]:
    """A payload for the admin's 'send test notification'."""
    labels = {"alertname": "TestNotification", "severity": "info"}
    entry = {
        "status": "firing",
        "labels": labels,
        "annotations": {"summary": f"Test notification from fleetwatch to {channel.name}"},
        "startsAt": _iso(now),
        "endsAt": ZERO_TIME,
        "generatorURL": f"{external_url()}/admin/alerts/channel/{channel.pk}/change/",
        "fingerprint": label_fingerprint(labels),
    }
    return {
        "version": "4",
        "groupKey": group_key({"alertname": "TestNotification"}),
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": channel.name,
        "groupLabels": {"alertname": "TestNotification"},
        "commonLabels": entry["labels"],
        "commonAnnotations": entry["annotations"],
        "externalURL": external_url(),
        "alerts": [entry],
        "sentAt": _iso(now),
    }
