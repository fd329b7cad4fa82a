"""Seed settings and bodies: ENABLE_EMAIL_ALERTS / ENABLE_SLACK_ALERTS, seed 004's alert body."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from alerting_worker.alerting import dispatch
from collector_server.alerts.models import Alert, Notification
from tests.alerting.test_delivery import fire, make_channel
from tests.members import member

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator() -> APIClient:
    client = APIClient()
    client.force_authenticate(member(User.objects.create_user("ann", password="pw-ann-123"), "operator"))
    return client


def test_enable_switches_stop_dispatch_to_their_kind_only(metrics, now, settings):
    slack = make_channel("slack", "slack", {"webhook_url": "http://127.0.0.1:9/s"})
    email = make_channel(
        "mail",
        "email",
        {"host": "127.0.0.1", "port": 25, "from": "a@b.c", "to": ["o@b.c"], "security": "none"},
    )
    hook = make_channel("hook", "webhook", {"url": "http://127.0.0.1:9/h"})
    fire(metrics, now, slack)
    Alert.objects.get().rule.channels.add(email, hook)
    settings.ENABLE_SLACK_ALERTS = False
    settings.ENABLE_EMAIL_ALERTS = False
    dispatch.dispatch_all(now)
    assert set(Notification.objects.values_list("channel__name", flat=True)) == {"hook"}
    settings.ENABLE_SLACK_ALERTS = True
    dispatch.dispatch_all(now)
    assert set(Notification.objects.values_list("channel__name", flat=True)) == {"hook", "slack"}


def test_seed_004_alert_body_is_accepted_and_mapped(operator):
    body = {
        "alertType": "high_error_rate",
        "severity": "warning",
        "message": "API error rate exceeded 5% threshold",
        "endpointId": "endpoint-123",
        "modelName": "qwen2.5:7b",
        "metadata": {"errorRate": 0.07, "threshold": 0.05, "timeWindow": "5m"},
    }
    created = operator.post("/api/monitoring/alerts", body, format="json")
    assert created.status_code == 201, created.content
    data = created.json()["data"]
    assert (data["name"], data["severity"], data["summary"]) == (
        "high_error_rate",
        "medium",
        "API error rate exceeded 5% threshold",
    )
    assert data["labels"] == {
        "alertname": "high_error_rate",
        "severity": "medium",
        "endpoint_id": "endpoint-123",
        "model": "qwen2.5:7b",
    }
    alert = Alert.objects.get(pk=data["id"])
    assert alert.annotations == {"errorRate": "0.07", "threshold": "0.05", "timeWindow": "5m"}


def test_alert_body_without_a_name_is_refused_naming_it(operator):
    answer = operator.post("/api/monitoring/alerts", {"severity": "warning"}, format="json")
    assert answer.status_code == 400 and answer.json()["error"].startswith("name:")
