"""The egress guard: channel destinations on non-public addresses are refused, at validation and delivery.

No test here sends traffic to a link-local or private address: refusals at validation use
literals or a test name whose resolution is replaced (``egress.resolve``, the guard's one
look-up function), and at delivery a spy on ``socket.create_connection`` shows that no
connection is attempted. Only receivers on loopback are ever contacted.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from alerting_worker.alerting import deliver, egress, notify_test
from alerting_worker.jobs_guard import build_worker
from alerting_worker.queues import NOTIFICATIONS, get_queue
from collector_server.alerts.models import Channel, Notification

pytestmark = pytest.mark.django_db
BASE = "/api/v1/monitoring"
REFUSED_URLS = [
    ("http://127.0.0.1:8080/hook", "loopback"),
    ("http://[::1]/hook", "loopback"),
    ("http://localhost/hook", "loopback"),  # /etc/hosts: resolved locally, nothing is sent
    ("http://2130706433/", "loopback"),  # 127.0.0.1 as one number, read by the resolver
    ("http://0177.0.0.1/", "loopback"),  # octal
    ("http://0x7f.1/", "loopback"),  # hex, short form
    ("http://10.0.0.5/hook", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://172.16.3.4/", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[::ffff:169.254.169.254]/", "link-local"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://[2002:a00:1::]/", "private"),  # 6to4 wrapping 10.0.0.1
    ("http://224.0.0.1/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://0.0.0.0:9000/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://100.100.100.200/", "reserved"),  # shared address space (a cloud metadata service)
]


@pytest.fixture
def nothing_allowed(settings):
    settings.FLEETWATCH_ALLOWED_TARGETS = []


@pytest.fixture
def admin_api() -> APIClient:
    client = APIClient()
    client.force_authenticate(User.objects.create_superuser("root", "root@example.com", "pw-root-123"))
    return client


@pytest.fixture
def connections(monkeypatch) -> list[tuple[str, int]]:
    """Record every outgoing TCP connection attempt (and let it go ahead, loopback only)."""
    attempts: list[tuple[str, int]] = []
    real = socket.create_connection

    def spy(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        attempts.append((address[0], address[1]))
        assert address[0] in ("127.0.0.1", "::1"), f"a test tried to connect to {address}"
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", spy)
    return attempts


def resolve_to(monkeypatch, table: dict[str, list[str]]) -> list[str]:
    """Make the guard resolve test names from ``table``; return the log of names looked up."""
    looked_up: list[str] = []

    def fake(host: str, port: int) -> list[str]:
        looked_up.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    monkeypatch.setattr(egress, "resolve", fake)
    return looked_up


def work(redis_client) -> None:
    build_worker([get_queue(NOTIFICATIONS)], name="test-notify").work(burst=True)


@pytest.mark.parametrize("url,kind", REFUSED_URLS)
def test_webhook_url_on_a_non_public_address_is_refused_with_its_class(nothing_allowed, admin_api, url, kind):
    response = admin_api.post(
        f"{BASE}/channels", {"name": "probe", "kind": "webhook", "config": {"url": url}}, format="json"
    )
    assert response.status_code == 400
    assert f"url points to a {kind} address" in response.json()["error"]
    assert not Channel.objects.filter(name="probe").exists()


@pytest.mark.parametrize(
    "kind,config,field",
    [
        ("slack", {"webhook_url": "http://169.254.169.254/"}, "webhook_url"),
        ("pagerduty", {"routing_key": "r" * 32, "url": "http://10.1.1.1/enqueue"}, "url"),
        ("email", {"host": "10.2.2.2", "port": 25, "from": "a@example.com", "to": ["b@example.com"]}, "host"),
    ],
)
def test_every_transport_checks_its_destination_in_model_clean(nothing_allowed, kind, config, field):
    channel = Channel(name="probe", kind=kind, config=config)
    with pytest.raises(ValidationError) as raised:
        channel.full_clean()
    assert f"{field} points to a " in str(raised.value.message_dict["config"])


def test_a_name_resolving_to_a_private_address_is_refused_at_validation(nothing_allowed, monkeypatch):
    resolve_to(monkeypatch, {"intranet.test": ["203.0.113.9", "10.9.8.7"]})  # one bad answer is enough
    channel = Channel(name="probe", kind="webhook", config={"url": "https://intranet.test/hook"})
    with pytest.raises(ValidationError, match=r"url points to a private address \(intranet\.test\)"):
        channel.full_clean()


def test_allowed_targets_accept_a_cidr_or_a_host_name(settings, monkeypatch):
    resolve_to(monkeypatch, {"relay.corp.test": ["10.20.0.5"]})
    settings.FLEETWATCH_ALLOWED_TARGETS = ["10.30.0.0/16", "relay.corp.test"]
    for url in ("http://10.30.4.5/hook", "http://relay.corp.test/hook"):
        Channel(name="ok", kind="webhook", config={"url": url}).full_clean()
    with pytest.raises(ValidationError, match="private address"):
        Channel(name="no", kind="webhook", config={"url": "http://10.31.0.1/"}).full_clean()


def test_a_bad_allowed_targets_entry_is_named():
    with pytest.raises(ValueError, match="FLEETWATCH_ALLOWED_TARGETS: 'not a host!' is neither"):
        egress.parse_allowed_targets("10.0.0.0/8,not a host!")


def test_delivery_to_a_name_that_now_resolves_to_link_local_connects_nowhere(
    nothing_allowed, monkeypatch, connections
):
    resolve_to(monkeypatch, {})  # at validation the name does not resolve yet: accepted
    channel = Channel(name="hook", kind="webhook", config={"url": "http://metadata.test/hook"})
    channel.full_clean()
    channel.save()
    resolve_to(monkeypatch, {"metadata.test": ["169.254.169.254"]})  # DNS changed since
    note = notify_test.queue_test(channel)
    assert deliver.deliver(note.pk) == Notification.FAILED
    note.refresh_from_db()
    assert "link-local address" in note.last_error and connections == []


def test_email_delivery_to_a_host_now_resolving_to_private_connects_nowhere(
    nothing_allowed, monkeypatch, connections
):
    resolve_to(monkeypatch, {})
    config = {"host": "smtp.test", "port": 587, "from": "a@example.com", "to": ["b@example.com"]}
    channel = Channel(name="mail", kind="email", config={**config, "username": "u", "password": "pw"})
    channel.full_clean()
    channel.save()
    resolve_to(monkeypatch, {"smtp.test": ["10.0.0.25"]})
    note = notify_test.queue_test(channel)
    assert deliver.deliver(note.pk) == Notification.FAILED
    note.refresh_from_db()
    assert "host points to a private address" in note.last_error and connections == []


def test_connection_is_pinned_to_the_checked_address(monkeypatch, connections, http_receiver):
    """The name is resolved once per delivery and the socket goes to that answer, never by name."""
    receiver = http_receiver()
    port = receiver.server.server_address[1]
    looked_up = resolve_to(monkeypatch, {"rebind.test": ["127.0.0.1"]})
    channel = Channel(name="hook", kind="webhook", config={"url": f"http://rebind.test:{port}/hook"})
    channel.full_clean()
    channel.save()
    looked_up.clear()
    note = notify_test.queue_test(channel)
    assert deliver.deliver(note.pk) == Notification.SENT
    assert looked_up == ["rebind.test"] and connections == [("127.0.0.1", port)]
    assert receiver.wait(1)[0].headers["Host"] == f"rebind.test:{port}"


class _Redirector(BaseHTTPRequestHandler):
    location = ""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(302)
        self.send_header("Location", self.location)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def redirector() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_redirects_are_not_followed_by_default(redirector, connections):
    _Redirector.location = "http://169.254.169.254/latest/meta-data/"
    url = f"http://127.0.0.1:{redirector.server_address[1]}/hook"
    channel = Channel.objects.create(name="hook", kind="webhook", config={"url": url})
    note = notify_test.queue_test(channel)
    assert deliver.deliver(note.pk) == Notification.FAILED
    note.refresh_from_db()
    assert "HTTP 302 (3xx): redirect not followed" in note.last_error
    assert connections == [("127.0.0.1", redirector.server_address[1])]


def test_a_followed_redirect_is_checked_like_the_first_hop(settings, monkeypatch, redirector, connections):
    settings.NOTIFY_MAX_REDIRECTS = 3
    resolve_to(monkeypatch, {"internal.test": ["10.0.0.1"]})
    _Redirector.location = "http://internal.test/admin"
    url = f"http://127.0.0.1:{redirector.server_address[1]}/hook"
    channel = Channel.objects.create(name="hook", kind="webhook", config={"url": url})
    note = notify_test.queue_test(channel)
    assert deliver.deliver(note.pk) == Notification.FAILED
    note.refresh_from_db()
    assert "url points to a private address (internal.test)" in note.last_error
    assert connections == [("127.0.0.1", redirector.server_address[1])]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def not_http() -> Iterator[int]:
    """A TCP service on loopback that answers something other than HTTP (like Redis or SSH)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"-ERR unknown command 'POST', secret banner\r\n")

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    stop.set()
    server.close()


def test_test_send_reports_status_class_never_the_body_and_open_and_closed_ports_read_alike(
    admin_api, http_receiver, not_http, redis_client, django_capture_on_commit_callbacks
):
    failing = http_receiver(status=lambda n: 500)
    urls = {
        "body": failing.url + "/hook",
        "closed": f"http://127.0.0.1:{_closed_port()}/hook",
        "open": f"http://127.0.0.1:{not_http}/hook",
    }
    outcomes = {}
    for name, url in urls.items():
        channel = Channel.objects.create(name=name, kind="webhook", config={"url": url})
        with django_capture_on_commit_callbacks(execute=True):
            queued = admin_api.post(f"{BASE}/channels/{channel.pk}/test")
        assert queued.status_code == 202
        work(redis_client)
        outcomes[name] = admin_api.get(queued.json()["url"]).json()
    assert outcomes["body"]["message"] == "Test notification to body failed: HTTP 500 (5xx)"
    assert outcomes["closed"]["success"] is False and outcomes["open"]["success"] is False
    closed = outcomes["closed"]["message"].replace("closed", "X")
    assert closed == outcomes["open"]["message"].replace("open", "X")
    assert "banner" not in outcomes["open"]["message"] and "error" not in outcomes["body"]["message"]


def test_test_outcome_of_another_channel_is_not_found(admin_api):
    one = Channel.objects.create(name="one", kind="webhook", config={"url": "http://127.0.0.1:9/"})
    two = Channel.objects.create(name="two", kind="webhook", config={"url": "http://127.0.0.1:9/"})
    note = notify_test.queue_test(one)
    assert admin_api.get(f"{BASE}/channels/{two.pk}/test/{note.pk}").status_code == 404


def test_the_admin_refuses_the_same_destination_as_the_api(nothing_allowed):
    from django.test import Client

    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw-root-123"))
    form = {
        "name": "metadata",
        "kind": "webhook",
        "config": '{"url": "http://169.254.169.254/latest/meta-data/"}',
        "enabled": "on",
        "group_by": "[]",
        "group_wait_seconds": "30",
        "group_interval_seconds": "300",
        "repeat_interval_seconds": "14400",
        "rate_limit_per_hour": "10",
        "created_at_0": "2026-01-01",
        "created_at_1": "00:00:00",
    }
    response = client.post("/admin/alerts/channel/add/", form)
    assert response.status_code == 200  # the form again, with the error
    assert "url points to a link-local address" in response.content.decode()
    assert not Channel.objects.filter(name="metadata").exists()
