"""`/metrics` for an anonymous scrape: pipeline-wide totals that name no tenant; with a token, the
token's organisation's detail; a superuser's session, every organisation's. Both views pass
`promtool check metrics`."""

from __future__ import annotations

import subprocess
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from collector_server.alerts.models import Alert, Channel, Notification
from collector_server.monitoring import health
from collector_server.monitoring.models import Host
from shared import host_limits
from tests.members import issue_token, member, organization
from tests.prometheus_api.real_prometheus import PROMTOOL

# Every value that tells one tenant from another; none may appear in an anonymous scrape.
TENANT_A = {
    "org": "tenant-alpha-q1",
    "host": "alpha-web-q1",
    "agent": "agent-alpha-q1",
    "channel": "alpha-pager-q1",
}
TENANT_B = {
    "org": "tenant-beta-q2",
    "host": "beta-db-q2",
    "agent": "agent-beta-q2",
    "channel": "beta-hook-q2",
}
# The only label names an anonymous scrape may carry; their values are fixed choices.
PIPELINE_LABELS = {"component", "reason", "stream", "queue", "state", "severity", "status"}


def _tenant(names: dict[str, str], alerts: int, refused: int, redis_client: Any) -> Any:
    org = organization(names["org"])
    Host.objects.create(
        organization=org, agent_id=names["agent"], hostname=names["host"], last_seen=timezone.now()
    )
    Host.objects.create(
        organization=org,
        agent_id=names["agent"] + "-old",
        hostname=names["host"] + "-old",
        last_seen=timezone.now() - timedelta(hours=3),
    )
    channel = Channel.objects.create(
        organization=org,
        name=names["channel"],
        kind="webhook",
        config={"url": "http://127.0.0.1:9/h"},
        status=Channel.FAILING,
        suppressed_count=refused,
    )
    Notification.objects.create(channel=channel, idempotency_key=f"n-{names['org']}", payload={})
    for i in range(alerts):
        Alert.objects.create(
            organization=org,
            name=f"alert-{names['org']}-{i}",
            labels={"host": names["host"]},
            labels_key=f"host={names['host']}-{i}",
            severity="high",
            state=Alert.FIRING,
            value=1.0,
            fired_at=timezone.now(),
        )
    pipe = redis_client.pipeline()
    host_limits.add(pipe, {(names["agent"], names["host"]): Counter({host_limits.SERIES_PER_HOST: refused})})
    pipe.execute()
    return org


@pytest.fixture
def tenants(db, redis_client) -> dict[str, Any]:
    health._client.cache_clear()
    orgs = {"a": _tenant(TENANT_A, 2, 3, redis_client), "b": _tenant(TENANT_B, 1, 4, redis_client)}
    # A refusal by an agent with no host row yet: the default organisation's, as ingest decides.
    pipe = redis_client.pipeline()
    host_limits.add(pipe, {("agent-stray-q3", "stray-q3"): Counter({host_limits.BATCH_BYTES: 5})})
    pipe.execute()
    yield orgs
    health._client.cache_clear()


def families(text: str) -> dict[str, list]:
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def total(samples: list, **labels: str) -> float:
    return sum(s.value for s in samples if all(s.labels.get(k) == v for k, v in labels.items()))


def promtool_check(text: str) -> None:
    result = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def scrape(client: Any, path: str = "/metrics") -> str:
    response = client.get(path)
    assert response.status_code == 200, response.content
    return response.content.decode()


@pytest.mark.parametrize("path", ["/metrics", "/api/metrics"])
def test_an_anonymous_scrape_has_pipeline_wide_totals_and_names_no_tenant(tenants, path):
    text = scrape(APIClient(), path)
    for names in (TENANT_A, TENANT_B):
        for value in names.values():
            assert value not in text
    assert "stray-q3" not in text and "default" not in text
    found = families(text)
    used = {name for samples in found.values() for s in samples for name in s.labels}
    assert used <= PIPELINE_LABELS, used - PIPELINE_LABELS
    # Totals over both organisations.
    assert total(found["fleetwatch_hosts"], state="up") == 2
    assert total(found["fleetwatch_hosts"], state="down") == 2
    assert total(found["fleetwatch_alerts_open"], state="firing", severity="high") == 3
    assert total(found["fleetwatch_notifications"], status="pending") == 2
    assert total(found["fleetwatch_notifications_suppressed"]) == 7
    assert total(found["fleetwatch_channels_failing"]) == 2
    assert total(found["fleetwatch_limit_refused"], reason=host_limits.SERIES_PER_HOST) == 7
    assert total(found["fleetwatch_limit_refused"], reason=host_limits.BATCH_BYTES) == 5
    assert "fleetwatch_channel_failing" not in found
    promtool_check(text)


def test_a_token_scrape_has_its_own_organisations_detail_only(tenants):
    user = member(User.objects.create_user("alpha-viewer-q1"), "viewer", TENANT_A["org"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(user, 'viewer', TENANT_A['org'])}")
    text = scrape(client)
    for value in TENANT_B.values():
        assert value not in text
    assert "stray-q3" not in text
    found = families(text)
    assert total(found["fleetwatch_hosts"], state="up", organization=TENANT_A["org"]) == 1
    assert {s.labels["organization"] for s in found["fleetwatch_hosts"]} == {TENANT_A["org"]}
    assert total(found["fleetwatch_alerts_open"], organization=TENANT_A["org"]) == 2
    assert total(found["fleetwatch_channel_failing"], channel=TENANT_A["channel"]) == 1
    refused = found["fleetwatch_limit_refused"]
    assert [(s.labels["host"], s.value) for s in refused] == [(TENANT_A["host"], 3)]
    promtool_check(text)


def test_the_default_organisations_token_sees_refusals_of_hosts_not_yet_stored(tenants):
    user = member(User.objects.create_user("default-admin-q3"), "admin")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(user, 'admin')}")
    text = scrape(client)
    refused = families(text)["fleetwatch_limit_refused"]
    assert [(s.labels["host"], s.value) for s in refused] == [("stray-q3", 5)]
    for names in (TENANT_A, TENANT_B):
        for value in names.values():
            assert value not in text


def test_a_superusers_session_sees_every_organisation_labelled(tenants):
    web = Client()
    web.force_login(User.objects.create_superuser("root-q4", password="x-root-password-4"))
    text = scrape(web)
    found = families(text)
    assert {s.labels["organization"] for s in found["fleetwatch_hosts"]} == {TENANT_A["org"], TENANT_B["org"]}
    assert {s.labels["host"] for s in found["fleetwatch_limit_refused"]} == {
        TENANT_A["host"],
        TENANT_B["host"],
        "stray-q3",
    }
    promtool_check(text)


def test_a_member_without_a_token_sees_its_memberships_only(tenants):
    web = Client()
    web.force_login(member(User.objects.create_user("beta-member-q2"), "viewer", TENANT_B["org"]))
    text = scrape(web)
    for value in TENANT_A.values():
        assert value not in text
    assert {s.labels["host"] for s in families(text)["fleetwatch_limit_refused"]} == {TENANT_B["host"]}


def test_anonymous_scrapes_are_refused_when_metrics_are_not_public(tenants, settings):
    settings.METRICS_PUBLIC = False
    for path in ("/metrics", "/api/metrics"):
        response = APIClient().get(path)
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert TENANT_A["org"] not in response.content.decode()
