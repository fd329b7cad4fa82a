"""Fallback chains: a cycle is rejected naming the field; a cycle made behind validation stops."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from alerting_worker.alerting import deliver, dispatch
from collector_server.alerts.models import Channel, Notification
from tests.members import member

from .test_delivery import fire, make_channel

pytestmark = pytest.mark.django_db
BASE = "/api/v1/monitoring"


def hook(name: str, **extra) -> Channel:
    return make_channel(name, "webhook", {"url": f"http://127.0.0.1:9/{name}"}, **extra)


def test_own_fallback_is_rejected():
    a = hook("a")
    a.fallback = a
    with pytest.raises(ValidationError) as info:
        a.full_clean()
    assert info.value.message_dict["fallback"] == ["a channel cannot be its own fallback"]


def test_two_channel_cycle_is_rejected_naming_the_field_and_the_chain():
    a = hook("a")
    b = hook("b", fallback=a)
    a.fallback = b
    with pytest.raises(ValidationError) as info:
        a.full_clean()
    [message] = info.value.message_dict["fallback"]
    assert "a → b → a" in message and "cycle" in message


def test_longer_cycle_is_rejected_and_a_chain_is_allowed():
    c = hook("c")
    b = hook("b", fallback=c)
    a = hook("a", fallback=b)  # a → b → c: fine
    assert Channel.objects.get(pk=a.pk).fallback_id == b.pk
    c.fallback = a
    with pytest.raises(ValidationError) as info:
        c.full_clean()
    assert "c → a → b → c" in info.value.message_dict["fallback"][0]


def test_chain_into_an_existing_loop_is_rejected():
    a, b = hook("a"), hook("b")
    Channel.objects.filter(pk=a.pk).update(fallback=b)  # a loop made behind validation's back
    Channel.objects.filter(pk=b.pk).update(fallback=a)
    new = Channel(name="new", kind="webhook", config={"url": "http://127.0.0.1:9/n"}, fallback=a)
    with pytest.raises(ValidationError) as info:
        new.full_clean()
    assert "loop" in info.value.message_dict["fallback"][0]


def test_api_rejects_a_cycle_with_a_400_naming_fallback():
    client = APIClient()
    client.force_authenticate(member(User.objects.create_user("ann", password="pw-ann-123")))
    a = hook("a")
    b = hook("b", fallback=a)
    response = client.patch(f"{BASE}/channels/{a.pk}", {"fallback": b.pk}, format="json")
    assert response.status_code == 400
    assert response.json()["error"].startswith("fallback")
    assert Channel.objects.get(pk=a.pk).fallback_id is None
    ok = client.patch(f"{BASE}/channels/{b.pk}", {"fallback": None}, format="json")
    assert ok.status_code == 200


def test_delivery_stops_at_a_loop_made_behind_validation(metrics, now, http_receiver):
    first, second = http_receiver(status=lambda n: 404), http_receiver(status=lambda n: 404)
    a = make_channel("a", "webhook", {"url": first.url})
    b = make_channel("b", "webhook", {"url": second.url})
    Channel.objects.filter(pk=a.pk).update(fallback=b)
    Channel.objects.filter(pk=b.pk).update(fallback=a)
    fire(metrics, now, Channel.objects.get(pk=a.pk))
    [note_id] = dispatch.dispatch_all(now)
    assert deliver.deliver(note_id) == "failed"
    copy = Notification.objects.get(channel=b)
    assert copy.idempotency_key.endswith(f":fallback-{b.pk}")
    assert deliver.deliver(copy.pk) == "failed"
    assert Notification.objects.count() == 2  # not handed back to a
    assert len(first.requests) == 1 and len(second.requests) == 1
