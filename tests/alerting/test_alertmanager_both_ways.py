"""fleetwatch → a real Alertmanager → its webhook → fleetwatch's live server, firing then resolved."""

from __future__ import annotations

import json
import urllib.request
from datetime import timedelta

import pytest
from django.utils import timezone

from collector_server.alerts.fingerprint import label_fingerprint
from collector_server.alerts.models import Alert, AlertEvent
from tests.alerting.alertmanager_server import alertmanager, get_alerts, wait_until
from tests.alerting.test_delivery import dispatch_and_work, fire, make_channel, resolve
from tests.members import issue_token, member

WEBHOOK = WEBHOOK_PATH = "/api/v1/monitoring/alertmanager/webhook"


def api_get(url: str, token: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.django_db(transaction=True)
def test_alert_reaches_alertmanager_and_comes_back_through_its_webhook(
    live_server, metrics, tmp_path, redis_client, django_capture_on_commit_callbacks, django_user_model
):
    user = django_user_model.objects.create_user("am-bot", password="x")
    token = issue_token(member(user, "operator"), "operator")
    with alertmanager(tmp_path, live_server.url + WEBHOOK, token) as am_url:
        channel = make_channel("team alertmanager", "alertmanager", {"url": am_url}, group_interval_seconds=1)
        fired_at = timezone.now() - timedelta(minutes=3)
        alert = fire(metrics, fired_at, channel)
        [note] = dispatch_and_work(redis_client, django_capture_on_commit_callbacks, fired_at)
        assert Alert.objects.get(pk=alert.pk).state == Alert.FIRING and note.payload["status"] == "firing"

        # Alertmanager holds it, with the same fingerprint fleetwatch computes.
        [held] = wait_until(lambda: get_alerts(am_url), what="the alert in Alertmanager")
        assert held["labels"] == {"alertname": "cpu high", "host": "web-1", "severity": "high"}
        assert held["fingerprint"] == label_fingerprint(held["labels"]) == alert.label_fingerprint
        assert held["status"]["state"] == "active"

        # Its webhook brings it back into fleetwatch, read-only, in the alert list.
        def inbound() -> Alert | None:
            return Alert.objects.filter(source=Alert.ALERTMANAGER, state=Alert.FIRING).first()

        copy = wait_until(inbound, what="Alertmanager's webhook to reach fleetwatch")
        assert copy.name == "cpu high" and copy.labels["host"] == "web-1" and copy.severity == "high"
        listed = api_get(live_server.url + "/api/v1/monitoring/alerts", token)
        sources = {(a["name"], a["source"]) for a in listed["data"]}
        assert sources == {("cpu high", "fleetwatch"), ("cpu high", "alertmanager")}
        assert {a["fingerprint"] for a in listed["data"]} == {alert.label_fingerprint}

        # Resolved in fleetwatch → resolved in Alertmanager → resolved copy through the webhook.
        resolved_at = timezone.now() - timedelta(minutes=1)
        resolve(metrics, resolved_at)
        [told] = dispatch_and_work(redis_client, django_capture_on_commit_callbacks, resolved_at)
        assert told.payload["status"] == "resolved"
        wait_until(
            lambda: Alert.objects.filter(pk=copy.pk, state=Alert.RESOLVED).exists(),
            what="the resolved webhook",
        )
        history = api_get(live_server.url + f"/api/v1/monitoring/alerts/history?alert={copy.pk}", token)
        assert [e["to_state"] for e in history["data"]] == ["resolved", "firing"]
        assert AlertEvent.objects.filter(alert=copy, actor="alertmanager").count() == 2
        assert not get_alerts(am_url)


def webhook_body(status: str, ends: str = "0001-01-01T00:00:00Z", **labels: str) -> dict:
    labels = {"alertname": "NodeDown", "instance": "db-1:9100", "severity": "warning", **labels}
    return {
        "version": "4",
        "groupKey": '{}:{alertname="NodeDown"}',
        "status": status,
        "receiver": "fleetwatch",
        "groupLabels": {"alertname": "NodeDown"},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://am:9093",
        "truncatedAlerts": 0,
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": {"summary": "db-1 is down"},
                "startsAt": "2026-01-01T10:00:00.123456789Z",
                "endsAt": ends,
                "generatorURL": "http://prom:9090/graph",
                "fingerprint": label_fingerprint(labels),
            }
        ],
    }


@pytest.mark.django_db
def test_webhook_alerts_are_listed_read_only_and_resolved_by_the_webhook(django_user_model):
    from rest_framework.test import APIClient

    client = APIClient()
    assert client.post(WEBHOOK_PATH, webhook_body("firing"), format="json").status_code in (401, 403)
    client.force_authenticate(member(django_user_model.objects.create_user("am"), "operator"))
    answer = client.post(WEBHOOK_PATH, webhook_body("firing"), format="json")
    assert answer.status_code == 200 and answer.json()["data"]["opened"] == 1
    again = client.post(WEBHOOK_PATH, webhook_body("firing"), format="json").json()
    assert again["data"] == {"opened": 0, "refreshed": 1, "resolved": 0, "ignored": 0}
    [alert] = client.get("/api/v1/monitoring/alerts").json()["data"]
    assert (alert["source"], alert["severity"], alert["summary"]) == (
        "alertmanager",
        "medium",
        "db-1 is down",
    )
    assert alert["state"] == "firing" and alert["created_at"].startswith("2026-01-01T10:00:00.123456")
    for verb in ("acknowledge", "resolve"):
        refused = client.post(f"/api/v1/monitoring/alerts/{alert['id']}/{verb}", {}, format="json")
        assert refused.status_code == 409 and "read-only" in refused.json()["error"]

    done = client.post(WEBHOOK_PATH, webhook_body("resolved", "2026-01-01T10:05:00Z"), format="json").json()
    assert done["data"]["resolved"] == 1
    assert Alert.objects.get(pk=alert["id"]).resolved_at.isoformat() == "2026-01-01T10:05:00+00:00"
    assert client.get("/api/v1/monitoring/alerts").json()["count"] == 0


@pytest.mark.django_db
def test_bad_webhook_body_is_a_400_naming_the_field(django_user_model):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(member(django_user_model.objects.create_user("am"), "operator"))
    body = webhook_body("firing")
    del body["alerts"][0]["labels"]["alertname"]
    answer = client.post(WEBHOOK_PATH, body, format="json")
    assert answer.status_code == 400 and "alertname" in answer.json()["error"]
    assert (
        client.post(WEBHOOK_PATH, {**webhook_body("firing"), "version": "3"}, format="json").status_code
        == 400
    )
