"""An unknown query parameter is a 400 naming it on every GET endpoint; documented ones still work.

The accepted names are derived from each view's declarations (collector_server/monitoring/api/
known_params.py); these tests pin them to the OpenAPI schema, so neither can drift from the other.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from alerting_worker.alerting import notify_test
from alerting_worker.ingest.logs_handler import write_logs
from collector_server.alerts.models import (
    Alert,
    AlertEvent,
    AlertRule,
    Channel,
    EscalationPolicy,
    Route,
    Silence,
)
from collector_server.orgs.models import ApiToken, AuditEvent, Membership
from tests.logs.conftest import make_batch, record
from tests.members import issue_token, member
from tests.server.conftest import make_host

HOUR_AGO = "2020-01-01T00:00:00Z"
FUTURE = "2100-01-01T00:00:00Z"

# Every GET operation of the schema, with a valid value for each documented query parameter.
# "{...}" in values and paths are filled in from the objects the `world` fixture creates.
VALID: dict[str, dict[str, str]] = {
    "/api/v1/monitoring/health": {"scope": "live"},
    "/api/v1/monitoring/metrics/system": {"minutes": "30", "host": "web-1"},
    "/api/v1/monitoring/metrics/summary": {"hours": "2", "host": "web-1"},
    "/api/v1/monitoring/metrics/api": {"minutes": "30"},
    "/api/v1/monitoring/dashboard/overview": {},
    "/ui/api/chart": {
        "chart": "cpu",
        "host": "web-1",
        "metric": "system_load1",
        "match[]": "host=web-1",
        "agg": "max",
        "by": "host",
        "step": "60s",
        "range": "6h",
        "start": "1700000000",
        "end": "1700003600",
        "width": "300",
    },
    "/ui/api/fleet": {"range": "6h", "start": "1700000000", "end": "1700003600", "width": "100"},
    "/ui/api/metric-names": {"prefix": "system"},
    "/ui/api/labels": {"metric": "system_load1"},
    "/ui/api/health": {},
    "/ui/api/model-hosts": {"range": "6h", "start": "1700000000", "end": "1700003600", "width": "100"},
    "/api/v1/monitoring/hosts": {
        "hostname": "web-1",
        "hostname__icontains": "web",
        "agent_version": "1.2.3",
        "up": "true",
        "limit": "10",
        "offset": "0",
    },
    "/api/v1/monitoring/hosts/{id}": {},
    "/api/v1/monitoring/models": {
        "hours": "2",
        "start": "{start}",
        "end": "{end}",
        "model": "qwen2.5:7b",
        "organization": "swag",
        "by": "organization",
    },
    "/api/v1/monitoring/models/series": {
        "figure": "ttft_p95",
        "hours": "2",
        "start": "{start}",
        "end": "{end}",
        "model": "qwen2.5:7b",
        "organization": "swag",
        "by": "organization",
        "points": "100",
    },
    "/api/v1/monitoring/models/daily-cost": {"days": "7", "model": "qwen2.5:7b", "organization": "swag"},
    "/api/v1/monitoring/query": {
        "metric": "system_load1",
        "match[]": "host=web-1",
        "start": "{start}",
        "end": "{end}",
        "step": "60s",
        "agg": "max",
        "by": "host",
    },
    "/api/v1/monitoring/alerts": {
        "severity": "high",
        "state": "firing",
        "host": "web-1",
        "rule": "{rule}",
        "name": "High CPU Usage",
        "manual": "false",
        "limit": "10",
        "offset": "0",
    },
    "/api/v1/monitoring/alerts/{id}": {},
    "/api/v1/monitoring/alerts/summary": {},
    "/api/v1/monitoring/alerts/history": {
        "alert": "{alert}",
        "rule": "{rule}",
        "host": "web-1",
        "to_state": "firing",
        "since": HOUR_AGO,
        "until": FUTURE,
        "limit": "10",
        "offset": "0",
    },
    "/api/v1/monitoring/rules": {
        "enabled": "true",
        "severity": "high",
        "query_type": "metric",
        "limit": "10",
        "offset": "0",
    },
    "/api/v1/monitoring/rules/{id}": {},
    "/api/v1/monitoring/rules/{id}/preview": {},
    "/api/v1/monitoring/silences": {"limit": "10", "offset": "0"},
    "/api/v1/monitoring/silences/{id}": {},
    "/api/v1/monitoring/channels": {
        "kind": "webhook",
        "enabled": "true",
        "status": "ok",
        "limit": "10",
        "offset": "0",
    },
    "/api/v1/monitoring/channels/{id}": {},
    "/api/v1/monitoring/channels/{id}/test/{notification_id}": {},
    "/api/v1/monitoring/routes": {
        "parent": "{route}",
        "channel": "{channel}",
        "generated": "false",
        "limit": "10",
        "offset": "0",
    },
    "/api/v1/monitoring/routes/{id}": {},
    "/api/v1/monitoring/escalation-policies": {"limit": "10", "offset": "0"},
    "/api/v1/monitoring/escalation-policies/{id}": {},
    "/api/v1/logs/search": {
        "start": HOUR_AGO,
        "end": FUTURE,
        "level": "INFO",
        "min_level": "DEBUG",
        "host": "web-1",
        "service": "api",
        "logger": "app",
        "pattern": "hel+o",
        "case_sensitive": "false",
        "q": "hello",
        "request_id": "req-1",
        "trace_id": "trace-1",
        "span_id": "span-1",
        "order": "oldest",
        "limit": "1",
        "cursor": "{cursor}",
    },
    "/api/v1/monitoring/enrollments": {"limit": "10", "offset": "0"},
    "/api/v1/monitoring/enrollments/{id}": {},
    "/api/v1/logs/stats": {"hours": "2"},
    "/api/v1/logs/requests/{request_id}": {},
    "/api/v1/audit/": {
        "actor": "admin",
        "object_type": "alerts.alertrule",
        "object_id": "{rule}",
        "action": "create",
        "since": HOUR_AGO,
        "until": FUTURE,
        "limit": "10",
        "offset": "0",
    },
    "/api/v1/audit/{id}/": {},
    "/api/v1/tokens/": {"limit": "10", "offset": "0"},
    "/api/v1/tokens/{id}/": {},
    "/api/v1/members/": {"limit": "10", "offset": "0"},
    "/api/v1/members/{id}/": {},
}
# Accepted beyond the schema: DRF's format override everywhere, attr.<name> on the logs search.
EXTRA = {"/api/v1/logs/search": {"attr.k": "v"}}
# The seed's unversioned alias, left out of the schema: same views, same rule.
ALIASES = ["/api/monitoring/alerts"]


@pytest.fixture
def api(db) -> APIClient:
    """An admin of the default organisation: every GET endpoint, the admin-only ones too."""
    user = member(User.objects.create_user("admin-user"), "admin")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(user, 'admin')}")
    return client


@pytest.fixture
def world(db, partitions, api):
    """One of everything a GET endpoint reads; returns the values to fill into paths and parameters."""
    from collector_server.enrollments.models import Enrollment

    enrollment, _ = Enrollment.enroll("web-1")
    host = make_host("web-1", agent_version="1.2.3")
    channel = Channel.objects.create(name="ops", kind="webhook", config={"url": "http://127.0.0.1:9/hook"})
    rule = AlertRule.objects.create(
        name="test high cpu",
        severity="high",
        query_type="metric",
        query={"metric": "system_cpu_usage_percent", "agg": "avg", "window_seconds": 300},
        threshold=90,
    )
    alert = Alert.objects.create(
        name="High CPU Usage",
        rule=rule,
        labels={"host": "web-1"},
        labels_key="host=web-1",
        severity="high",
        state="firing",
        value=91.0,
    )
    AlertEvent.objects.create(
        alert=alert, rule=rule, to_state="firing", from_state="pending", at=timezone.now()
    )
    silence = Silence.objects.create(
        matchers=[{"name": "host", "op": "=", "value": "web-1"}], ends_at=timezone.now() + timedelta(hours=1)
    )
    route = Route.objects.create(name="root")
    policy = EscalationPolicy.objects.create(name="policy")
    logs = [
        record("hello one", service="api", logger="app", request_id="req-1", trace_id="trace-1", span_id="span-1",
               attrs={"k": "v"}, ago=120),
        record("hello two", service="api", logger="app", request_id="req-1", trace_id="trace-1", span_id="span-1",
               attrs={"k": "v"}, ago=60),
    ]  # fmt: skip
    with connection.cursor() as cursor:
        write_logs(cursor.cursor, [make_batch(logs, "web-1")])
    now = time.time()
    admin_user = User.objects.get(username="admin-user")
    return {
        "/audit/": AuditEvent.all_objects.latest("id").pk,
        "/tokens/": ApiToken.all_objects.get(user=admin_user).pk,
        "/members/": Membership.all_objects.get(user=admin_user).pk,
        "/hosts/": host.pk,
        "/alerts/": alert.pk,
        "/rules/": rule.pk,
        "/silences/": silence.pk,
        "/channels/": channel.pk,
        "/enrollments/": enrollment.pk,
        "notification_id": notify_test.queue_test(channel).pk,
        "/routes/": route.pk,
        "/escalation-policies/": policy.pk,
        "rule": rule.pk,
        "route": route.pk,
        "channel": channel.pk,
        "alert": alert.pk,
        "request_id": "req-1",
        "start": str(int(now - 3600)),
        "end": str(int(now)),
    }


def url_of(path: str, world: dict) -> str:
    if "{request_id}" in path:
        return path.replace("{request_id}", world["request_id"])
    path = path.replace("{notification_id}", str(world["notification_id"]))
    for part, pk in world.items():
        if part.startswith("/") and part in path + "/":
            return path.replace("{id}", str(pk))
    return path


def values_of(api, path: str, world: dict) -> dict[str, str]:
    values = {}
    for name, value in VALID[path].items():
        if value == "{cursor}":
            first = {k: v for k, v in VALID[path].items() if k != "cursor"}
            value = api.get(path, first).json()["next_cursor"]
            assert value, "the first page should have a next page"
        elif value.startswith("{"):
            value = str(world[value.strip("{}")])
        values[name] = value
    return values


@pytest.fixture
def schema_params(api) -> dict[str, set[str]]:
    schema = api.get("/api/schema/", {"format": "json"}).json()
    return {
        path: {p["name"] for p in ops["get"].get("parameters", []) if p["in"] == "query"}
        for path, ops in schema["paths"].items()
        if "get" in ops
    }


def test_the_table_lists_every_get_endpoint_and_every_documented_parameter(schema_params):
    assert set(VALID) == set(schema_params)
    for path, names in schema_params.items():
        assert set(VALID[path]) == names, path


@pytest.mark.parametrize("path", [*VALID, *ALIASES])
def test_an_unknown_parameter_is_a_400_naming_it_and_the_accepted_ones(api, world, schema_params, path):
    response = api.get(url_of(path, world), {"minute": "5"})
    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert body["success"] is False
    assert "unknown parameter" in body["detail"]["minute"][0]
    assert body["error"].startswith("minute: unknown parameter; accepted: ")
    accepted = body["error"].split("accepted: ", 1)[1].split(", ")
    documented = schema_params.get(path, schema_params.get(path.replace("/api/", "/api/v1/")))
    prefixes = [f"{name.split('.')[0]}.<name>" for name in EXTRA.get(path, {})]
    assert sorted(accepted) == sorted({*documented, "format", *prefixes})


@pytest.mark.parametrize("path", VALID)
def test_every_documented_parameter_is_accepted(api, world, path):
    params = {**values_of(api, path, world), **EXTRA.get(path, {}), "format": "json"}
    response = api.get(url_of(path, world), params)
    assert response.status_code == 200, (path, response.content[:500])
    assert response.json().get("success", True) is not False


@pytest.mark.parametrize(
    ("path", "params", "name"),
    [
        ("/api/v1/monitoring/metrics/system", {"minute": "5"}, "minute"),
        ("/api/v1/monitoring/dashboard/overview", {"hours": "abc"}, "hours"),
        ("/api/v1/monitoring/hosts", {"hostname": "web-1", "hostnme": "web-2"}, "hostnme"),
        ("/api/v1/monitoring/hosts", {"page": "2"}, "page"),
        ("/api/v1/monitoring/alerts/summary", {"state": "firing"}, "state"),
        ("/api/v1/monitoring/alerts/1", {"limit": "5"}, "limit"),
        ("/api/v1/logs/search", {"attrs.k": "v"}, "attrs.k"),
    ],
)
def test_typos_and_parameters_of_other_endpoints_are_refused(api, db, path, params, name):
    response = api.get(path, params)
    assert response.status_code == 400, response.content[:300]
    assert response.json()["error"].startswith(f"{name}: unknown parameter; accepted: ")


def test_a_filter_value_on_the_history_is_checked_too(api, db):
    response = api.get("/api/v1/monitoring/alerts/history", {"since": "yesterday"})
    assert response.status_code == 400
    assert "since" in response.json()["detail"]


def test_the_logs_search_still_filters_on_attributes(api, world):
    assert api.get("/api/v1/logs/search", {"attr.k": "v"}).json()["count"] == 2
    assert api.get("/api/v1/logs/search", {"attr.k": "other"}).json()["count"] == 0


def test_unknown_parameters_are_checked_after_authentication(anonymous, db):
    assert anonymous.get("/api/v1/monitoring/metrics/system", {"minute": "5"}).status_code == 401
    assert anonymous.get("/api/v1/monitoring/health", {"scope": "live", "x": "1"}).status_code == 400


def test_post_with_a_query_string_is_not_refused(api, db):
    """Only reads are checked; e.g. a POST with ?format=json or a stray parameter still works."""
    body = {"name": "disk", "severity": "low", "labels": {"host": "web-1"}}
    response = api.post("/api/v1/monitoring/alerts?source=cli", body, format="json")
    assert response.status_code == 201, response.content[:300]
