"""Fixtures for alerting tests: metric data written straight to Postgres, real HTTP and SMTP receivers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.db import connection

from collector_server.alerts.matchers import labels_key


def disable_seeded_rules() -> None:
    """Disable the alert rules every organisation is seeded with, so only a test's own rules run.

    The default organisation is made sure of first: after a transactional test's flush it is
    created again (with its seeded, enabled rules) the first time something needs it, which
    could be after the rules were disabled (a host-down rule then inhibits the test's alert).
    """
    from collector_server.alerts.models import AlertRule
    from collector_server.orgs.scope import default_organization_id

    default_organization_id()
    AlertRule.objects.update(enabled=False)


@pytest.fixture
def now() -> datetime:
    """A fixed 'now': the last noon that has passed (tests pass it explicitly; nothing sleeps).

    Never in the future, whatever the time of day: a host seen by the real clock is not down
    at 'now', and what a job reads up to the real clock holds the test's samples.
    """
    return (datetime.now(UTC) - timedelta(hours=12)).replace(hour=12, minute=0, second=0, microsecond=0)


class Metrics:
    """Write series and samples directly, as the ingest worker would."""

    def __init__(self) -> None:
        self.ids: dict[tuple[str, str], int] = {}

    def series(self, name: str, kind: str = "gauge", **labels: str) -> int:
        from collector_server.monitoring.models import Host, Series

        key = (name, labels_key(labels))
        if key not in self.ids:
            host = None
            if "host" in labels:
                host, _ = Host.objects.get_or_create(
                    agent_id=labels["host"], defaults={"hostname": labels["host"]}
                )
            series = Series.objects.create(name=name, kind=kind, labels=labels, labels_key=key[1], host=host)
            self.ids[key] = series.pk
        return self.ids[key]

    def add(self, name: str, points: list[tuple[datetime, float]], kind: str = "gauge", **labels: str) -> int:
        sid = self.series(name, kind, **labels)
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO monitoring_sample (series_id, ts, value) VALUES (%s, %s, %s) "
                "ON CONFLICT DO NOTHING",
                [(sid, ts, value) for ts, value in points],
            )
        return sid

    def gauge(
        self, name: str, at: datetime, value: float, span: int = 60, step: int = 10, **labels: str
    ) -> int:
        """Write a constant gauge for the `span` seconds up to `at`."""
        points = [(at - timedelta(seconds=s), value) for s in range(0, span, step)]
        return self.add(name, points, **labels)


@pytest.fixture
def metrics(partitions) -> Metrics:
    return Metrics()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class HttpReceiver:
    """A real HTTP server on 127.0.0.1 recording every POST; `status` decides the reply."""

    server: ThreadingHTTPServer
    requests: list[Received] = field(default_factory=list)
    status: Callable[[int], int] = lambda n: 200
    delay: float = 0.0
    got: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait(self, count: int = 1, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.requests


def _make_handler(receiver: HttpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
            receiver.requests.append(Received(self.path, dict(self.headers), body))
            receiver.got.set()
            if receiver.delay:
                time.sleep(receiver.delay)
            code = receiver.status(len(receiver.requests))
            self.send_response(code)
            self.end_headers()
            self.wfile.write(b"ok" if code < 400 else b"error")

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def http_receiver() -> Iterator[Callable[..., HttpReceiver]]:
    servers: list[ThreadingHTTPServer] = []

    def start(status: Callable[[int], int] = lambda n: 200, delay: float = 0.0) -> HttpReceiver:
        server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
        receiver = HttpReceiver(server=server, status=status, delay=delay)
        server.RequestHandlerClass = _make_handler(receiver)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return receiver

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


class SmtpSink:
    """Collect messages delivered to a real aiosmtpd server."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        from email import message_from_bytes

        self.messages.append((envelope, message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[SmtpSink, int]]:
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


@pytest.fixture
def webhook_channel(db, http_receiver):
    """A webhook channel with no grouping delays, pointing at a real local receiver."""
    from collector_server.alerts.models import Channel

    receiver = http_receiver()
    channel = Channel(
        name="ops webhook",
        kind="webhook",
        config={"url": receiver.url + "/hook?token=s3cret"},
        group_wait_seconds=0,
        group_interval_seconds=60,
        is_default=True,
    )
    channel.full_clean()
    channel.save()
    return channel, receiver


@pytest.fixture
def tls_smtp_server(tmp_path) -> Iterator[tuple[SmtpSink, int]]:
    """A real SMTP server requiring STARTTLS and AUTH (user 'alerts', password 'app-password')."""
    import socket
    import ssl
    import subprocess

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = auth_data.login == b"alerts" and auth_data.password == b"app-password"
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 235/535 itself

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sink = SmtpSink()
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticate,
        auth_require_tls=True,
    )
    controller.start()
    yield sink, port
    controller.stop()
