"""Every write operation of the schema refuses a body field it does not know, naming it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from collector_server.alerts.models import Alert, AlertRule, Channel, EscalationPolicy, Route, Silence
from collector_server.enrollments.models import Enrollment

pytestmark = pytest.mark.django_db
WRITE_METHODS = ("post", "put", "patch")
# Alertmanager's format is Alertmanager's: fields fleetwatch does not read are ignored (documented).
TOLERANT = {"/api/v1/monitoring/alertmanager/webhook"}


@pytest.fixture
def operator() -> APIClient:
    client = APIClient()
    # A superuser: no permission check may answer before the body is read (enrollments are admin-only).
    client.force_authenticate(User.objects.create_superuser("ann", password="pw-ann-123"))
    return client


def _objects() -> dict[str, int]:
    rule = AlertRule.objects.create(name="r", query={"metric": "cpu"}, threshold=1)
    channel = Channel.objects.create(name="c", kind="webhook", config={"url": "http://127.0.0.1:9/x"})
    silence = Silence.objects.create(matchers=[{"name": "host", "op": "=", "value": "a"}])
    alert = Alert.objects.create(name="a", labels={}, labels_key="", severity="high", state="firing")
    route = Route.objects.create(name="root")
    policy = EscalationPolicy.objects.create(name="p")
    enrollment, _ = Enrollment.enroll("web-1")
    return {
        "rules": rule.pk,
        "channels": channel.pk,
        "silences": silence.pk,
        "alerts": alert.pk,
        "routes": route.pk,
        "escalation-policies": policy.pk,
        "enrollments": enrollment.pk,
    }


def test_every_write_operation_refuses_an_unknown_field(operator):
    ids = _objects()
    schema = operator.get("/api/schema/", {"format": "json"}).json()
    checked = []
    for path, operations in schema["paths"].items():
        for method in set(operations) & set(WRITE_METHODS):
            if path in TOLERANT:
                continue
            resource = next((r for r in ids if f"/{r}/" in path), None)
            url = path.replace("{id}", str(ids[resource])) if resource else path
            assert "{" not in url, f"no object for {path}"
            answer = getattr(operator, method)(url, {"group_wait": 30}, format="json")
            assert answer.status_code == 400, (method, url, answer.status_code, answer.content)
            assert answer.json()["error"].startswith("group_wait: unknown field; accepted:"), (method, url)
            checked.append((method, path))
    assert len(checked) >= 15, checked


def test_channel_with_a_misspelt_timer_is_refused_not_created(operator):
    body = {"name": "hook", "kind": "webhook", "config": {"url": "http://127.0.0.1:9/h"}, "group_wait": 10}
    answer = operator.post("/api/v1/monitoring/channels", body, format="json")
    assert answer.status_code == 400
    assert "group_wait_seconds" in answer.json()["error"]  # the accepted names are listed
    assert not Channel.objects.filter(name="hook").exists()


def test_channel_config_that_is_not_an_object_is_a_400(operator):
    body = {"name": "x", "kind": "email", "config": 0.5}
    answer = operator.post("/api/v1/monitoring/channels", body, format="json")
    assert answer.status_code == 400 and answer.json()["error"].startswith("config:")
