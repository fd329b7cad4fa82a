"""A stored secret never follows a channel to a new destination: the PATCH must send it again.

The trick from the issue: change only the SMTP host (or port) of someone's email channel,
press "test", and read the stored password on your own SMTP server. Here the attacker's
server is a real aiosmtpd on loopback that records every AUTH attempt.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from alerting_worker.jobs_guard import build_worker
from alerting_worker.queues import NOTIFICATIONS, get_queue
from collector_server.alerts.models import Channel

pytestmark = pytest.mark.django_db
BASE = "/api/v1/monitoring"


class RecordingSmtp:
    """A plain SMTP server advertising AUTH that records the credentials it is given."""

    def __init__(self) -> None:
        self.logins: list[tuple[bytes, bytes]] = []
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult

        self.logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=True)


@pytest.fixture
def smtp_servers() -> Iterator[Any]:
    from aiosmtpd.controller import Controller

    controllers: list[Controller] = []

    def start() -> tuple[RecordingSmtp, int]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        sink = RecordingSmtp()
        controller = Controller(
            sink, hostname="127.0.0.1", port=port, authenticator=sink.authenticate, auth_require_tls=False
        )
        controller.start()
        controllers.append(controller)
        return sink, port

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
def admin_api() -> APIClient:
    client = APIClient()
    client.force_authenticate(User.objects.create_superuser("root", "root@example.com", "pw-root-123"))
    return client


def press_test(admin_api, channel_id, redis_client, capture) -> dict[str, Any]:
    with capture(execute=True):
        queued = admin_api.post(f"{BASE}/channels/{channel_id}/test")
    assert queued.status_code == 202
    build_worker([get_queue(NOTIFICATIONS)], name="test-notify").work(burst=True)
    return admin_api.get(queued.json()["url"]).json()


def email_channel(port: int) -> Channel:
    config = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "username": "alerts",
        "password": "admins-smtp-password",
        "from": "alerts@example.com",
        "to": ["ops@example.com"],
    }
    channel = Channel(name="admin mail", kind="email", config=config)
    channel.full_clean()
    channel.save()
    return channel


def test_changing_only_the_smtp_host_or_port_sends_no_password(
    admin_api, smtp_servers, redis_client, django_capture_on_commit_callbacks
):
    real, real_port = smtp_servers()
    attacker, attacker_port = smtp_servers()
    channel = email_channel(real_port)
    for change in ({"port": attacker_port}, {"host": "localhost", "port": attacker_port}):
        response = admin_api.patch(f"{BASE}/channels/{channel.pk}", {"config": change}, format="json")
        assert response.status_code == 400
        assert "requires password again" in response.json()["error"]
    outcome = press_test(admin_api, channel.pk, redis_client, django_capture_on_commit_callbacks)
    assert outcome["success"] is True
    assert attacker.logins == [] and attacker.messages == []
    assert real.logins == [(b"alerts", b"admins-smtp-password")]


def test_a_new_destination_with_the_password_given_again_is_accepted(
    admin_api, smtp_servers, redis_client, django_capture_on_commit_callbacks
):
    _, old_port = smtp_servers()
    new, new_port = smtp_servers()
    channel = email_channel(old_port)
    change = {"host": "localhost", "port": new_port, "password": "a-new-password"}
    response = admin_api.patch(f"{BASE}/channels/{channel.pk}", {"config": change}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["settings"]["password"] == "********"
    outcome = press_test(admin_api, channel.pk, redis_client, django_capture_on_commit_callbacks)
    assert outcome["success"] is True and new.logins == [(b"alerts", b"a-new-password")]


def test_a_change_that_keeps_the_destination_keeps_the_stored_password(admin_api, smtp_servers):
    _, port = smtp_servers()
    channel = email_channel(port)
    response = admin_api.patch(
        f"{BASE}/channels/{channel.pk}", {"config": {"to": ["new@example.com"], "port": port}}, format="json"
    )
    assert response.status_code == 200, response.json()
    channel.refresh_from_db()
    assert channel.config["password"] == "admins-smtp-password" and channel.config["to"] == [
        "new@example.com"
    ]


def test_pagerduty_url_change_without_the_routing_key_is_refused(
    admin_api, http_receiver, redis_client, django_capture_on_commit_callbacks
):
    real, attacker = http_receiver(), http_receiver()
    channel = Channel(
        name="pd", kind="pagerduty", config={"routing_key": "R" * 32, "url": real.url + "/v2/enqueue"}
    )
    channel.full_clean()
    channel.save()
    response = admin_api.patch(
        f"{BASE}/channels/{channel.pk}", {"config": {"url": attacker.url + "/steal"}}, format="json"
    )
    assert (
        response.status_code == 400 and "changing url requires routing_key again" in response.json()["error"]
    )
    outcome = press_test(admin_api, channel.pk, redis_client, django_capture_on_commit_callbacks)
    assert outcome["success"] is True and attacker.requests == []
    assert real.wait(1)[0].body["routing_key"] == "R" * 32


def test_webhook_url_change_requires_its_stored_headers_again(admin_api, http_receiver):
    real, attacker = http_receiver(), http_receiver()
    channel = Channel.objects.create(
        name="hook", kind="webhook", config={"url": real.url, "headers": {"Authorization": "Token abc"}}
    )
    moved = admin_api.patch(f"{BASE}/channels/{channel.pk}", {"config": {"url": attacker.url}}, format="json")
    assert moved.status_code == 400 and "requires headers again" in moved.json()["error"]
    kind = admin_api.patch(
        f"{BASE}/channels/{channel.pk}",
        {"kind": "slack", "config": {"webhook_url": attacker.url}},
        format="json",
    )
    assert kind.status_code == 200  # slack keeps no headers: nothing stored travels
    channel.refresh_from_db()
    assert channel.config == {"webhook_url": attacker.url, "channel": ""}
