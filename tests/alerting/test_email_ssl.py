"""The email channel over implicit TLS (SMTPS, ``security: ssl``), against a real aiosmtpd server.

The channel verifies the server's certificate against the system CAs (OpenSSL's default,
so ``SSL_CERT_FILE`` replaces them) unless ``insecure_skip_verify`` is set.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from alerting_worker.alerting import deliver, dispatch
from collector_server.alerts.models import Channel, DeliveryAttempt, Notification
from tests.alerting.conftest import SmtpSink
from tests.alerting.test_delivery import fire, make_channel

pytestmark = pytest.mark.django_db

USER, PASSWORD = "alerts", "app-password"


class TlsSmtpSink(SmtpSink):
    """Also record the TLS cipher each message arrived over (None on a plain connection)."""

    def __init__(self) -> None:
        super().__init__()
        self.ciphers: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.ciphers.append(server.transport.get_extra_info("cipher"))
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture(scope="module")
def server_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (as the STARTTLS fixture makes, plus the IP as a SAN).

    Hostname checks match an IP address against the subjectAltName only, so the SAN lets a
    client that trusts this certificate verify it; the CN alone would not.
    """
    folder = tmp_path_factory.mktemp("smtps")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def smtps_server(server_cert: tuple[Path, Path]) -> Iterator[tuple[TlsSmtpSink, int]]:
    """A real SMTP server speaking TLS from the first byte (port-465 style), with AUTH."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, server_cert))

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
        return AuthResult(success=ok, handled=False)

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sink = TlsSmtpSink()
    # aiosmtpd's auth_require_tls only recognises STARTTLS; this connection is TLS from the start.
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=port,
        ssl_context=context,
        authenticator=authenticate,
        auth_require_tls=False,
    )
    controller.start()
    yield sink, port
    controller.stop()


@pytest.fixture
def ssl_channel(smtps_server: tuple[TlsSmtpSink, int]) -> Callable[..., Channel]:
    def make(host: str = "127.0.0.1", **extra: Any) -> Channel:
        config = {
            "host": host,
            "port": smtps_server[1],
            "security": "ssl",
            "username": USER,
            "password": PASSWORD,
            "from": "alerts@example.com",
            "to": ["ops@example.com", "oncall@example.com"],
            **extra,
        }
        return make_channel("smtps", "email", config)

    return make


def _deliver_one(metrics, now, channel: Channel) -> tuple[Notification, str]:
    fire(metrics, now, channel)
    [note_id] = dispatch.dispatch_all(now)
    status = deliver.deliver(note_id)
    return Notification.objects.get(pk=note_id), status


def test_email_over_implicit_tls_with_auth_delivers_the_alert(metrics, now, smtps_server, ssl_channel):
    sink, _ = smtps_server
    # The same trust setting as the STARTTLS test: the test server's certificate is self-signed.
    note, status = _deliver_one(metrics, now, ssl_channel(insecure_skip_verify=True))
    assert status == "sent"
    [(envelope, message)] = sink.messages
    assert sink.ciphers[0] is not None  # the message travelled inside TLS
    assert envelope.mail_from == "alerts@example.com"
    assert sorted(envelope.rcpt_tos) == ["oncall@example.com", "ops@example.com"]
    assert message["From"] == "alerts@example.com"
    assert message["To"] == "ops@example.com, oncall@example.com"
    assert message["Subject"] == "[FIRING:1] cpu high"
    assert note.idempotency_key.replace(":", ".") in message["Message-ID"]
    body = message.get_payload()
    assert "[FIRING] CPU on web-1 is 97.0%" in body
    assert "labels: (alertname=cpu high host=web-1 severity=high)" in body
    attempt = DeliveryAttempt.objects.get(notification=note)
    assert attempt.ok and attempt.response == "250 accepted (2 recipients)"


def test_email_over_implicit_tls_refuses_an_untrusted_certificate_permanently(
    metrics, now, smtps_server, ssl_channel
):
    sink, _ = smtps_server
    channel = ssl_channel()  # verification on (the default), certificate not in any trusted store
    note, status = _deliver_one(metrics, now, channel)
    assert status == "failed" and sink.messages == []
    attempt = DeliveryAttempt.objects.get(notification=note)
    assert attempt.permanent
    assert "TLS certificate of 127.0.0.1 not trusted: self-signed certificate" in attempt.response
    assert "insecure_skip_verify" in attempt.response  # the message says how to fix it
    assert Channel.objects.get(pk=channel.pk).status == "failing"


def test_email_over_implicit_tls_verifies_a_certificate_trusted_through_ssl_cert_file(
    metrics, now, smtps_server, ssl_channel, server_cert, monkeypatch
):
    sink, _ = smtps_server
    monkeypatch.setenv("SSL_CERT_FILE", str(server_cert[0]))
    note, status = _deliver_one(metrics, now, ssl_channel())  # verification on, the certificate trusted
    assert status == "sent" and DeliveryAttempt.objects.get(notification=note).ok
    [(envelope, message)] = sink.messages
    assert envelope.rcpt_tos == ["ops@example.com", "oncall@example.com"]
    assert message["Subject"] == "[FIRING:1] cpu high" and "CPU on web-1 is 97.0%" in message.get_payload()


def test_email_over_implicit_tls_refuses_a_trusted_certificate_for_another_name(
    metrics, now, smtps_server, ssl_channel, server_cert, monkeypatch
):
    sink, _ = smtps_server
    monkeypatch.setenv("SSL_CERT_FILE", str(server_cert[0]))
    # Same server and a trusted certificate, but it names 127.0.0.1, not "localhost".
    note, status = _deliver_one(metrics, now, ssl_channel(host="localhost"))
    assert status == "failed" and sink.messages == []
    attempt = DeliveryAttempt.objects.get(notification=note)
    assert attempt.permanent and "TLS certificate of localhost not trusted: Hostname mismatch" in (
        attempt.response
    )
