"""Ingest, rule evaluation, dispatch and the query layer keep organisations apart."""

from __future__ import annotations

import time
from datetime import timedelta

from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from alerting_worker.alerting import dispatch, evaluate
from alerting_worker.ingest.logs_handler import write_logs
from alerting_worker.ingest.metrics_handler import MetricsHandler, SeriesCache
from collector_server.alerts.models import Alert, AlertRule, Channel, Notification, Silence
from collector_server.monitoring.models import Host, Series
from collector_server.orgs import scope
from shared.wire import Batch
from shared.wire import Series as WireSeries
from tests.logs.conftest import make_batch, record
from tests.members import issue_token, member, organization


def _metrics_batch(agent_id: str, host: str, value: float) -> Batch:
    now = time.time()
    return Batch(
        kind="metrics",
        agent_id=agent_id,
        host=host,
        agent_version="1",
        epoch=1,
        seq=1,
        sent_at=now,
        series=[WireSeries("system_cpu_usage_percent", "gauge", {}, [[now - 5, value]])],
    )


def _ingest(batches: list[Batch]) -> None:
    handler = MetricsHandler(SeriesCache())
    handler.prepare(batches)
    with connection.cursor() as cursor:
        handler(cursor.cursor, batches)


def test_ingest_puts_a_new_host_in_the_default_organisation_and_keeps_a_hosts_own(db, partitions):
    other = organization("other")
    Host.objects.create(agent_id="agent-b", hostname="web-1", organization=other)
    _ingest([_metrics_batch("agent-a", "web-1", 10.0), _metrics_batch("agent-b", "web-1", 99.0)])
    default_id = scope.default_organization_id()
    assert Host.objects.get(agent_id="agent-a").organization_id == default_id
    # Same host name and labels in two organisations: two series, one per organisation.
    owners = sorted(
        Series.objects.filter(name="system_cpu_usage_percent").values_list("organization_id", flat=True)
    )
    assert owners == sorted([default_id, other.pk])
    with connection.cursor() as cursor:
        write_logs(cursor.cursor, [make_batch([record("from b")], "web-1")])  # agent-web-1: no host row
        own = make_batch([record("b's own")], "web-1")
        own.agent_id = "agent-b"
        write_logs(cursor.cursor, [own])
        cursor.execute("SELECT message, organization_id FROM logs_entry ORDER BY message")
        assert cursor.fetchall() == [("b's own", other.pk), ("from b", default_id)]


def test_a_rule_sees_only_its_organisations_series_and_silences(db, partitions):
    other = organization("other")
    Host.objects.create(agent_id="agent-b", hostname="web-1", organization=other)
    _ingest([_metrics_batch("agent-a", "web-1", 10.0), _metrics_batch("agent-b", "web-1", 99.0)])
    query = {"metric": "system_cpu_usage_percent", "aggregation": "last", "window": 300, "group_by": ["host"]}
    for org in (organization(), other):
        AlertRule.objects.create(organization=org, name="hot", query=query, threshold=50)
    evaluate.evaluate_all(timezone.now())
    firing = list(Alert.objects.filter(state=Alert.FIRING).values_list("organization_id", "value"))
    assert firing == [(other.pk, 99.0)]  # the default organisation's web-1 is at 10
    # A silence of the default organisation does not mute the other organisation's alert.
    Silence.objects.create(
        matchers=[{"name": "host", "op": "=", "value": "web-1"}], ends_at=timezone.now() + timedelta(hours=1)
    )
    Channel.objects.create(
        organization=other,
        name="b",
        kind="webhook",
        config={"url": "http://127.0.0.1:9/"},
        is_default=True,
        group_wait_seconds=0,
    )
    Channel.objects.create(
        name="a", kind="webhook", config={"url": "http://127.0.0.1:9/"}, is_default=True, group_wait_seconds=0
    )
    assert dispatch.mark_muted(timezone.now()) == set()
    dispatch.dispatch_all(timezone.now())
    assert list(Notification.objects.values_list("channel__name", flat=True)) == ["b"]


def test_the_query_layer_answers_each_organisation_its_own_series(db, partitions):
    other = organization("other")
    Host.objects.create(agent_id="agent-b", hostname="web-1", organization=other)
    _ingest([_metrics_batch("agent-a", "web-1", 10.0), _metrics_batch("agent-b", "web-1", 99.0)])
    for slug, expected in ((None, 10.0), ("other", 99.0)):
        client = APIClient()
        user = member(User.objects.create_user(f"u-{slug}"), "viewer", slug)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(user, 'viewer', slug)}")
        data = client.get(
            "/api/v1/monitoring/query", {"metric": "system_cpu_usage_percent", "agg": "max"}
        ).json()
        values = [point[1] for series in data["data"]["series"] for point in series["points"]]
        assert values and set(values) == {expected}, (slug, data)


def test_a_superuser_switches_organisation_for_the_session_and_by_header(db, partitions):
    from django.test import Client

    other = organization("other")
    Host.objects.create(agent_id="agent-b", hostname="b-host", organization=other)
    Host.objects.create(agent_id="agent-a", hostname="a-host")
    root = User.objects.create_superuser("root", "r@example.com", "pw-root-12345")
    web = Client()
    web.force_login(root)
    names = lambda response: sorted(h["hostname"] for h in response.json()["data"])  # noqa: E731
    assert names(web.get("/api/v1/monitoring/hosts")) == ["a-host", "b-host"]  # a superuser sees all
    assert names(web.get("/api/v1/monitoring/hosts", HTTP_X_FLEETWATCH_ORGANIZATION="other")) == ["b-host"]
    assert web.get("/?organization=other").status_code == 302
    assert names(web.get("/api/v1/monitoring/hosts")) == ["b-host"]
    assert b"<b>other</b>" in web.get("/").content
    web.get("/?organization=")
    assert names(web.get("/api/v1/monitoring/hosts")) == ["a-host", "b-host"]
    unknown = web.get("/api/v1/monitoring/hosts", HTTP_X_FLEETWATCH_ORGANIZATION="nope")
    assert unknown.status_code == 404 and "nope" in unknown.json()["error"]
    outsider = Client()
    outsider.force_login(member(User.objects.create_user("outsider", is_staff=True), "viewer"))
    assert outsider.get("/?organization=other").status_code == 403
