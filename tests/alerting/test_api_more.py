"""API behaviour the seed tests left out: the rule filter, silence update/delete, channel delete."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from collector_server.alerts.models import Alert, AlertRule, Channel, Notification, NotificationGroup, Silence
from tests.members import member

pytestmark = pytest.mark.django_db
BASE = "/api/v1/monitoring"


def client_for(username: str) -> APIClient:
    client = APIClient()
    client.force_authenticate(member(User.objects.create_user(username)))
    return client


@pytest.fixture
def operator() -> APIClient:
    return client_for("ann")


def test_alerts_are_filtered_by_rule(operator):
    cpu, memory = (
        AlertRule.objects.get(name="High CPU Usage"),
        AlertRule.objects.get(name="Critical Memory Usage"),
    )
    for rule, host in ((cpu, "web-1"), (cpu, "web-2"), (memory, "web-1")):
        Alert.objects.create(
            rule=rule, name=rule.name, labels={"host": host}, labels_key=f"host={host}", state="firing"
        )
    body = operator.get(f"{BASE}/alerts?rule={cpu.pk}").json()
    assert body["count"] == 2 and {a["name"] for a in body["data"]} == {"High CPU Usage"}
    assert operator.get(f"{BASE}/alerts?rule={memory.pk}&host=web-1").json()["count"] == 1
    assert operator.get(f"{BASE}/alerts?rule=999999").json()["count"] == 0
    bad = operator.get(f"{BASE}/alerts?rule=cpu")
    assert bad.status_code == 400 and "rule" in bad.json()["error"]


@pytest.fixture
def silence(operator) -> dict:
    payload = {
        "matchers": [{"name": "host", "op": "=", "value": "web-1"}],
        "starts_at": "2026-01-01T00:00:00Z",
        "ends_at": "2026-01-01T02:00:00Z",
        "comment": "maintenance",
    }
    created = operator.post(f"{BASE}/silences", payload, format="json")
    assert created.status_code == 201, created.json()
    return created.json()


def test_silence_update_keeps_its_author_and_validates(silence):
    bob = client_for("bob")
    url = f"{BASE}/silences/{silence['id']}"
    changed = bob.patch(url, {"ends_at": "2026-01-01T04:00:00Z", "created_by": "mallory"}, format="json")
    assert changed.status_code == 200, changed.json()
    stored = Silence.objects.get(pk=silence["id"])
    assert stored.ends_at.hour == 4 and stored.created_by == "ann"  # the author, not settable by a client
    backwards = bob.patch(url, {"ends_at": "2025-12-31T00:00:00Z"}, format="json")
    assert backwards.status_code == 400 and "ends_at" in backwards.json()["detail"]
    assert Silence.objects.get(pk=silence["id"]).ends_at.hour == 4


def test_silence_delete(operator, silence):
    url = f"{BASE}/silences/{silence['id']}"
    assert operator.delete(url).status_code == 204
    assert not Silence.objects.filter(pk=silence["id"]).exists()
    assert operator.get(url).status_code == 404
    assert operator.delete(url).status_code == 404


def test_channel_delete_takes_its_outbox_and_leaves_rules_and_fallbacks(operator):
    doomed = Channel.objects.create(name="doomed", kind="webhook", config={"url": "http://x.example/h"})
    other = Channel.objects.create(
        name="other", kind="webhook", config={"url": "http://y.example/h"}, fallback=doomed
    )
    rule = AlertRule.objects.get(name="Host Down")
    rule.channels.add(doomed, other)
    Notification.objects.create(channel=doomed, idempotency_key="k1", payload={})
    NotificationGroup.objects.create(channel=doomed, key="alertname=x")
    assert operator.delete(f"{BASE}/channels/{doomed.pk}").status_code == 204
    assert not Channel.objects.filter(pk=doomed.pk).exists()
    assert not Notification.objects.filter(idempotency_key="k1").exists()
    assert not NotificationGroup.objects.filter(key="alertname=x").exists()
    assert Channel.objects.get(pk=other.pk).fallback is None
    assert list(AlertRule.objects.get(pk=rule.pk).channels.all()) == [other]
    assert operator.get(f"{BASE}/channels/{doomed.pk}").status_code == 404
