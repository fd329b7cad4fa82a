"""The alerting API: seed response shapes, operator actions, validation naming the field, secrets."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from collector_server.alerts.models import Alert, AlertEvent, AlertRule, Channel
from tests.members import member

pytestmark = pytest.mark.django_db
BASE = "/api/v1/monitoring"


@pytest.fixture
def operator() -> APIClient:
    client = APIClient()
    client.force_authenticate(member(User.objects.create_user("ann", password="pw-ann-123")))
    return client


@pytest.fixture
def firing(db) -> Alert:
    return Alert.objects.create(
        name="High CPU Usage",
        labels={"host": "web-1", "alertname": "High CPU Usage", "severity": "high"},
        labels_key="host=web-1",
        severity="high",
        state="firing",
        value=91.0,
        summary="CPU on web-1 is 91.0%",
    )


def test_anonymous_requests_are_refused(db):
    assert APIClient().get(f"{BASE}/alerts").status_code in (401, 403)


def test_alert_list_keeps_the_seed_shape_and_filters(operator, firing):
    Alert.objects.create(
        name="disk", labels={"host": "db-1"}, labels_key="host=db-1", severity="medium", state="pending"
    )
    Alert.objects.create(name="old", labels={}, labels_key="", severity="low", state="resolved")
    body = operator.get(f"{BASE}/alerts").json()
    assert body["success"] is True and body["count"] == 2
    assert {a["name"] for a in body["data"]} == {"High CPU Usage", "disk"}
    one = next(a for a in body["data"] if a["name"] == "High CPU Usage")
    assert {"id", "name", "description", "severity", "status", "created_at", "updated_at", "metadata"} <= set(
        one
    )
    assert operator.get(f"{BASE}/alerts?severity=high").json()["count"] == 1
    assert operator.get(f"{BASE}/alerts?host=db-1").json()["data"][0]["name"] == "disk"
    assert operator.get(f"{BASE}/alerts?state=resolved").json()["data"][0]["name"] == "old"


def test_bad_filter_value_is_a_400_naming_it(operator, firing):
    response = operator.get(f"{BASE}/alerts?severity=apocalyptic")
    assert response.status_code == 400 and "severity" in response.json()["error"]


def test_acknowledge_records_who_and_answers_like_the_seed(operator, firing):
    response = operator.post(f"{BASE}/alerts/{firing.pk}/acknowledge", {"comment": "looking"}, format="json")
    assert response.json() == {"success": True, "message": f"Alert {firing.pk} acknowledged"}
    firing.refresh_from_db()
    assert firing.acknowledged_by == "ann" and firing.ack_comment == "looking"
    assert firing.display_state == "acknowledged"
    event = AlertEvent.objects.get(alert=firing, to_state="acknowledged")
    assert event.actor == "ann"


def test_acknowledging_a_resolved_alert_is_a_conflict(operator, firing):
    Alert.objects.filter(pk=firing.pk).update(state="resolved")
    assert operator.post(f"{BASE}/alerts/{firing.pk}/acknowledge").status_code == 409


def test_resolve_records_who_and_is_in_the_history(operator, firing):
    assert operator.post(f"{BASE}/alerts/{firing.pk}/resolve").json()["success"] is True
    firing.refresh_from_db()
    assert firing.state == "resolved" and firing.resolved_by == "ann"
    history = operator.get(f"{BASE}/alerts/history?alert={firing.pk}").json()
    assert history["count"] == 1 and history["data"][0]["to_state"] == "resolved"
    assert operator.post(f"{BASE}/alerts/{firing.pk}/resolve").status_code == 409


def test_summary_counts_by_severity_and_state(operator, firing):
    Alert.objects.create(name="x", labels={}, labels_key="a=1", severity="critical", state="pending")
    data = operator.get(f"{BASE}/alerts/summary").json()["data"]
    assert data["total"] == 2
    assert data["by_severity"]["high"] == 1 and data["by_severity"]["critical"] == 1
    assert data["by_severity"]["low"] == 0
    assert data["by_state"]["firing"] == 1 and data["by_state"]["pending"] == 1


def test_manual_alert_is_created_then_resolved(operator):
    payload = {
        "name": "deploy failed",
        "severity": "high",
        "labels": {"service": "api"},
        "summary": "rollback",
    }
    created = operator.post(f"{BASE}/alerts", payload, format="json")
    assert created.status_code == 201
    alert_id = created.json()["data"]["id"]
    alert = Alert.objects.get(pk=alert_id)
    assert alert.manual and alert.state == "firing" and alert.created_by == "ann"
    assert operator.post(f"{BASE}/alerts", payload, format="json").status_code == 409  # already open
    operator.post(f"{BASE}/alerts/{alert_id}/resolve")
    assert operator.post(f"{BASE}/alerts", payload, format="json").status_code == 201


def test_manual_alert_with_unknown_severity_is_rejected_naming_it(operator):
    response = operator.post(f"{BASE}/alerts", {"name": "x", "severity": "doom"}, format="json")
    assert response.status_code == 400 and response.json()["error"].startswith("severity")


def test_rule_crud_and_model_validation_through_the_api(operator):
    rule = {
        "name": "gpu hot",
        "query_type": "metric",
        "query": {
            "metric": "gpu_temperature_celsius",
            "aggregation": "max",
            "window": 120,
            "group_by": ["host"],
        },
        "comparison": ">",
        "threshold": 85,
        "recovery_threshold": 80,
        "for_seconds": 60,
        "annotations": {"summary": "GPU on {host} at {value:.0f}C"},
    }
    created = operator.post(f"{BASE}/rules", rule, format="json")
    assert created.status_code == 201, created.json()
    rule_id = created.json()["id"]
    bad = operator.patch(f"{BASE}/rules/{rule_id}", {"recovery_threshold": 90}, format="json")
    assert bad.status_code == 400 and "recovery_threshold" in bad.json()["detail"]
    bad = operator.patch(
        f"{BASE}/rules/{rule_id}", {"query": {"metric": "m", "aggregation": "mode"}}, format="json"
    )
    assert bad.status_code == 400 and "mode" in bad.json()["error"]
    assert operator.patch(f"{BASE}/rules/{rule_id}", {"threshold": 90}, format="json").status_code == 200
    assert AlertRule.objects.get(pk=rule_id).threshold == 90
    assert operator.delete(f"{BASE}/rules/{rule_id}").status_code == 204


def test_rule_preview_shows_the_value_per_group(operator, metrics, now):
    from datetime import UTC, datetime

    metrics.gauge("system_memory_usage_percent", datetime.now(UTC), 95, host="web-1")
    rule = AlertRule.objects.get(name="Critical Memory Usage")
    data = operator.get(f"{BASE}/rules/{rule.pk}/preview").json()["data"]
    assert data == [{"labels": {"host": "web-1"}, "value": 95.0, "breaches": True}]


def test_channel_secrets_are_write_only(operator):
    payload = {"name": "hook", "kind": "webhook", "config": {"url": "https://hooks.example.com/T0K3N"}}
    created = operator.post(f"{BASE}/channels", payload, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert "config" not in body and body["settings"]["url"] == "********"
    assert "T0K3N" not in operator.get(f"{BASE}/channels/{body['id']}").content.decode()
    renamed = operator.patch(
        f"{BASE}/channels/{body['id']}", {"config": {"headers": {"X": "1"}}}, format="json"
    )
    assert renamed.status_code == 200
    assert Channel.objects.get(pk=body["id"]).config["url"] == "https://hooks.example.com/T0K3N"


def test_channel_with_bad_config_is_rejected_naming_the_field(operator):
    response = operator.post(
        f"{BASE}/channels", {"name": "m", "kind": "email", "config": {"host": "x"}}, format="json"
    )
    assert response.status_code == 400 and response.json()["error"].startswith("config")


def test_silence_created_through_the_api_records_its_author(operator):
    payload = {
        "matchers": [{"name": "host", "op": "=", "value": "web-1"}],
        "starts_at": "2026-01-01T00:00:00Z",
        "ends_at": "2026-01-01T02:00:00Z",
        "comment": "maintenance",
    }
    created = operator.post(f"{BASE}/silences", payload, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["created_by"] == "ann"
    bad = operator.post(f"{BASE}/silences", {**payload, "matchers": []}, format="json")
    assert bad.status_code == 400 and "matchers" in bad.json()["detail"]


def test_send_test_notification_is_queued_and_reaches_the_receiver(
    operator, http_receiver, redis_client, django_capture_on_commit_callbacks
):

    from alerting_worker.jobs_guard import build_worker
    from alerting_worker.queues import NOTIFICATIONS, get_queue

    receiver = http_receiver()
    channel = Channel(name="t", kind="webhook", config={"url": receiver.url})
    channel.save()
    with django_capture_on_commit_callbacks(execute=True):
        response = operator.post(f"{BASE}/channels/{channel.pk}/test")
    assert response.status_code == 202 and response.json()["status"] == "pending"
    assert receiver.requests == []  # the server process sends nothing itself
    build_worker([get_queue(NOTIFICATIONS)], name="test-notify").work(burst=True)
    assert receiver.wait(1)[0].body["alerts"][0]["labels"]["alertname"] == "TestNotification"
    outcome = operator.get(response.json()["url"]).json()
    assert outcome["success"] is True and outcome["message"] == "Test notification sent to t: HTTP 200 (2xx)"


def test_unsaved_rule_can_be_previewed_before_saving(operator, metrics):
    from datetime import UTC, datetime

    metrics.gauge("system_disk_usage_percent", datetime.now(UTC), 91, host="web-1", mountpoint="/")
    body = {
        "name": "disk draft",
        "query": {"metric": "system_disk_usage_percent", "window": 60, "group_by": ["host", "mountpoint"]},
        "comparison": ">",
        "threshold": 90,
    }
    data = operator.post(f"{BASE}/rules/preview", body, format="json").json()["data"]
    assert data == [{"labels": {"host": "web-1", "mountpoint": "/"}, "value": 91.0, "breaches": True}]
    assert not AlertRule.objects.filter(name="disk draft").exists()
    bad = operator.post(f"{BASE}/rules/preview", {**body, "query": {"metric": ""}}, format="json")
    assert bad.status_code == 400 and "metric is required" in bad.json()["error"]
