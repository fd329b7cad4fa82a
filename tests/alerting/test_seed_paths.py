"""The seed documents' alert paths: /api/monitoring/ (no version) and PUT on resolve and acknowledge."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from collector_server.alerts.models import Alert, AlertEvent
from tests.members import member

pytestmark = pytest.mark.django_db
SEED = "/api/monitoring"


@pytest.fixture
def operator() -> APIClient:
    client = APIClient()
    client.force_authenticate(member(User.objects.create_user("ann", password="pw-ann-123")))
    return client


def test_seed_paths_create_list_acknowledge_and_resolve_a_manual_alert(operator):
    payload = {"name": "deploy failed", "severity": "high", "labels": {"service": "api"}}
    created = operator.post(f"{SEED}/alerts", payload, format="json")
    assert created.status_code == 201, created.content
    alert_id = created.json()["data"]["id"]
    assert Alert.objects.get(pk=alert_id).manual
    listed = operator.get(f"{SEED}/alerts").json()
    assert listed["success"] is True and [a["id"] for a in listed["data"]] == [alert_id]
    assert operator.get(f"{SEED}/alerts/{alert_id}").json()["id"] == alert_id

    ack = operator.put(f"{SEED}/alerts/{alert_id}/acknowledge", {"comment": "on it"}, format="json")
    assert ack.json() == {"success": True, "message": f"Alert {alert_id} acknowledged"}
    resolved = operator.put(f"{SEED}/alerts/{alert_id}/resolve", {"comment": "fixed"}, format="json")
    assert resolved.json() == {"success": True, "message": f"Alert {alert_id} resolved"}
    alert = Alert.objects.get(pk=alert_id)
    assert alert.state == "resolved" and alert.resolved_by == "ann" and alert.acknowledged_by == "ann"
    assert AlertEvent.objects.get(alert=alert, to_state="resolved").note == "fixed"
    assert operator.put(f"{SEED}/alerts/{alert_id}/resolve").status_code == 409


@pytest.mark.parametrize("base", ["/api/v1/monitoring", SEED])
@pytest.mark.parametrize("verb", ["post", "put"])
def test_resolve_and_acknowledge_accept_post_and_put_on_both_paths(operator, base, verb):
    alert = Alert.objects.create(
        name="cpu", labels={"host": "a"}, labels_key="host=a", severity="high", state="firing"
    )
    send = getattr(operator, verb)
    assert send(f"{base}/alerts/{alert.pk}/acknowledge", {}, format="json").status_code == 200
    assert send(f"{base}/alerts/{alert.pk}/resolve", {}, format="json").status_code == 200
    assert Alert.objects.get(pk=alert.pk).state == "resolved"
    assert operator.delete(f"{base}/alerts/{alert.pk}/resolve").status_code == 405


def test_seed_paths_need_authentication(db):
    anonymous = APIClient()
    assert anonymous.get(f"{SEED}/alerts").status_code in (401, 403)
    assert anonymous.post(f"{SEED}/alerts", {"name": "x"}, format="json").status_code in (401, 403)
    assert Alert.objects.count() == 0


def test_seed_alias_stays_out_of_the_schema(operator):
    from drf_spectacular.drainage import GENERATOR_STATS

    GENERATOR_STATS.reset()
    schema = operator.get("/api/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    assert not [p for p in paths if p.startswith("/api/monitoring/")]
    assert {"post", "put"} <= set(paths["/api/v1/monitoring/alerts/{id}/resolve"])
    assert {"post", "put"} <= set(paths["/api/v1/monitoring/alerts/{id}/acknowledge"])
    ids = [op["operationId"] for ops in paths.values() for op in ops.values() if isinstance(op, dict)]
    assert len(ids) == len(set(ids))
    ours = [m for m in [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache] if "alerts" in m]
    assert ours == []
