"""An acknowledgement holds while the alert keeps firing and ends with the episode."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from alerting_worker.alerting import evaluate
from collector_server.alerts.models import Alert, AlertRule
from tests.alerting.conftest import disable_seeded_rules
from tests.members import member

pytestmark = pytest.mark.django_db


@pytest.fixture
def cpu_rule(db) -> AlertRule:
    disable_seeded_rules()
    rule = AlertRule(
        name="cpu high",
        query={"metric": "cpu", "aggregation": "avg", "window": 60, "group_by": ["host"]},
        threshold=80,
        annotations={"summary": "CPU on {host} is {value:.1f}%"},
    )
    rule.full_clean()
    rule.save()
    return rule


def at(metrics, t, value: float) -> None:
    metrics.gauge("cpu", t, value, host="web-1")
    evaluate.evaluate_all(t)


def test_acknowledgement_holds_until_the_alert_resolves(cpu_rule, metrics, now):
    at(metrics, now, 95)
    first = Alert.objects.get(rule=cpu_rule, state="firing")
    client = APIClient()
    client.force_authenticate(member(User.objects.create_user("ann")))
    ack = client.post(
        f"/api/v1/monitoring/alerts/{first.pk}/acknowledge", {"comment": "on it"}, format="json"
    )
    assert ack.status_code == 200
    for n, value in enumerate([96, 99, 91], start=1):  # still firing, the value and summary change
        at(metrics, now + timedelta(seconds=15 * n), value)
        first.refresh_from_db()
        assert first.state == "firing" and first.display_state == "acknowledged"
        assert (first.acknowledged_by, first.ack_comment) == ("ann", "on it")
    assert first.summary != "CPU on web-1 is 95.0%"  # re-rendered while acknowledged

    at(metrics, now + timedelta(minutes=2), 10)
    first.refresh_from_db()
    assert first.state == "resolved" and first.display_state == "resolved"
    at(metrics, now + timedelta(minutes=4), 97)  # fires again: a new episode, not acknowledged
    second = Alert.objects.get(rule=cpu_rule, state="firing")
    assert second.pk != first.pk
    assert second.acknowledged_at is None and second.acknowledged_by == ""
    assert second.display_state == "firing"
    listed = client.get("/api/v1/monitoring/alerts").json()["data"]
    assert [a["id"] for a in listed] == [second.pk]
