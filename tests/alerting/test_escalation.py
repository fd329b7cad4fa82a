"""A three-step escalation under controlled time: steps in turn, acknowledge stops, resolve tells all."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from alerting_worker.alerting import dispatch
from collector_server.alerts.models import Alert, EscalationState, Notification
from tests.alerting.test_routing_tree import channel, firing
from tests.members import member

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator() -> APIClient:
    client = APIClient()
    # Routes and escalation policies are the organisation admins' to write.
    client.force_authenticate(member(User.objects.create_user("ann", password="pw-ann-123"), "admin"))
    return client


@pytest.fixture
def three_steps(operator, django_capture_on_commit_callbacks):
    """Policy: on-call at once, the team lead after 5 min, the manager 10 min after that."""
    names = ("on-call", "lead", "manager")
    ids = {name: channel(name).pk for name in names}
    body = {
        "name": "db escalation",
        "steps": [
            {"channel": ids["on-call"], "delay_minutes": 0},
            {"channel": ids["lead"], "delay_minutes": 5},
            {"channel": ids["manager"], "delay_minutes": 10},
        ],
    }
    created = operator.post("/api/v1/monitoring/escalation-policies", body, format="json")
    assert created.status_code == 201, created.content
    with django_capture_on_commit_callbacks(execute=True):
        root = operator.post("/api/v1/monitoring/routes", {"name": "root"}, format="json").json()
        child = {
            "parent": root["id"],
            "matchers": [{"name": "team", "op": "=", "value": "db"}],
            "escalation": created.json()["id"],
        }
        assert operator.post("/api/v1/monitoring/routes", child, format="json").status_code == 201
    return names


def told_at(at, alert: Alert | None = None) -> list[tuple[str, str]]:
    """Dispatch at ``at``; return (channel, status) of the notifications written."""
    ids = dispatch.dispatch_all(at)
    notes = Notification.objects.filter(pk__in=ids).select_related("channel").order_by("pk")
    return [(n.channel.name, n.payload["status"]) for n in notes]


def test_unacknowledged_alert_walks_every_step_and_resolving_tells_them_all(now, three_steps):
    alert = firing("ReplicationLag", now, team="db")
    assert told_at(now) == [("on-call", "firing")]
    assert told_at(now + timedelta(minutes=4, seconds=59)) == []
    assert told_at(now + timedelta(minutes=5)) == [("lead", "firing")]
    assert told_at(now + timedelta(minutes=14)) == []
    assert told_at(now + timedelta(minutes=15)) == [("manager", "firing")]
    assert told_at(now + timedelta(minutes=60)) == []  # no step after the last

    Alert.objects.filter(pk=alert.pk).update(state="resolved", resolved_at=now + timedelta(minutes=61))
    resolved = told_at(now + timedelta(minutes=61))
    assert sorted(resolved) == [("lead", "resolved"), ("manager", "resolved"), ("on-call", "resolved")]
    assert told_at(now + timedelta(minutes=62)) == []  # told once


def test_acknowledging_stops_the_escalation_and_resolve_tells_only_the_steps_told(now, three_steps, operator):
    alert = firing("ReplicationLag", now, team="db")
    assert told_at(now) == [("on-call", "firing")]
    assert told_at(now + timedelta(minutes=5)) == [("lead", "firing")]
    assert (
        operator.post(f"/api/v1/monitoring/alerts/{alert.pk}/acknowledge", {}, format="json").status_code
        == 200
    )
    assert told_at(now + timedelta(minutes=7)) == []
    assert told_at(now + timedelta(minutes=30)) == []  # the manager is never paged
    state = EscalationState.objects.get(alert=alert)
    assert state.stopped_reason == "acknowledged" and state.next_at is None

    assert (
        operator.post(f"/api/v1/monitoring/alerts/{alert.pk}/resolve", {}, format="json").status_code == 200
    )
    resolved = told_at(now + timedelta(minutes=31))
    assert sorted(resolved) == [("lead", "resolved"), ("on-call", "resolved")]


def test_alert_outside_the_escalating_route_is_not_escalated(now, three_steps):
    firing("Other", now, team="web")
    assert told_at(now + timedelta(minutes=30)) == []
    assert not EscalationState.objects.exists()
