"""The UI's faster read paths: coarse steps on whole hours (1 h rollups), cached fleet sparklines."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from collector_server.monitoring import partitions as parts
from collector_server.monitoring.models import RollupState
from collector_server.ui import fleet, ranges
from tests.server.conftest import insert_rollup, insert_samples, make_host, make_series

CHART = "/ui/api/chart"


def test_coarse_steps_are_whole_hours_and_fine_ones_unchanged():
    end = datetime(2026, 3, 8, tzinfo=UTC)
    assert ranges.step_for(end - timedelta(days=7), end, 600) == 3600  # 1008 s
    assert ranges.step_for(end - timedelta(days=30), end, 600) == 2 * 3600  # 4320 s
    assert ranges.step_for(end - timedelta(hours=24), end, 600) == 144
    assert ranges.step_for(end - timedelta(hours=1), end, 600) == 10
    assert ranges.step_for(end - timedelta(days=2), end, 200) == 864  # not coarse
    assert ranges.step_for(end - timedelta(days=2, hours=2), end, 200) == 3600  # 900 s: coarse


def test_a_seven_day_chart_reads_the_hourly_rollups(api, db):
    host = make_host("web-1")
    cpu = make_series(host, "system_cpu_usage_percent")
    done = timezone.now().replace(minute=0, second=0, microsecond=0)
    buckets = [done - timedelta(hours=h) for h in range(1, 24 * 7)]
    for day in {b.date() for b in buckets}:
        parts.ensure_partition(parts.ROLLUP_1H, day)
    insert_rollup("monitoring_rollup_1h", cpu, [(b, 1.0, 9.0, 60.0 * 25, 60, 5.0, None) for b in buckets])
    RollupState.objects.create(level="1h", done_until=done)
    RollupState.objects.create(level="1m", done_until=done)
    data = api.get(CHART, {"chart": "cpu", "host": "web-1", "range": "7d", "width": "600"}).json()["data"]
    assert data["step"] == 3600 and data["source"] == "1h"
    values = [v for v in data["series"][0]["values"] if v is not None]
    assert len(values) == len(buckets) and set(values) == {25.0}


def test_fleet_sparklines_are_reused_within_the_cache_time_and_redrawn_for_a_new_host(
    db, settings, redis_client
):
    settings.UI_SPARKLINE_CACHE_SECONDS = 300
    end = timezone.now().replace(second=0, microsecond=0)
    start = end - timedelta(minutes=10)
    web = make_host("web-1")
    cpu = make_series(web, "system_cpu_usage_percent")
    insert_samples(cpu, [(start + timedelta(minutes=1), 10.0)])
    hosts = [web]
    _, first = fleet.cached_sparklines(hosts, start, end, 60)
    assert [v for _, v in first["web-1"]["cpu"]] == [10.0]
    insert_samples(cpu, [(start + timedelta(minutes=5), 30.0)])
    _, again = fleet.cached_sparklines(hosts, start, end, 60)
    assert again == first  # within the cache time: the same body, no query
    hosts.append(make_host("db-1"))
    _, redrawn = fleet.cached_sparklines(hosts, start, end, 60)
    assert [v for _, v in redrawn["web-1"]["cpu"]] == [10.0, 30.0]
    settings.UI_SPARKLINE_CACHE_SECONDS = 0
    insert_samples(cpu, [(start + timedelta(minutes=7), 50.0)])
    _, fresh = fleet.cached_sparklines(hosts, start, end, 60)
    assert [v for _, v in fresh["web-1"]["cpu"]] == [10.0, 30.0, 50.0]


def test_fleet_sparklines_are_shared_through_redis_and_computed_without_it(db, settings, redis_client):
    """Every server process reads the same copy (one miss per cache time for the deployment);
    with Redis unreachable the page still gets its sparklines, computed for the call."""
    settings.UI_SPARKLINE_CACHE_SECONDS = 300
    end = timezone.now().replace(second=0, microsecond=0)
    start = end - timedelta(minutes=10)
    web = make_host("web-1")
    cpu = make_series(web, "system_cpu_usage_percent")
    insert_samples(cpu, [(start + timedelta(minutes=1), 10.0)])
    _, first = fleet.cached_sparklines([web], start, end, 60)
    keys = redis_client.keys("*ui-sparklines:*")
    assert len(keys) == 1 and 0 < redis_client.ttl(keys[0]) <= 6 * 300
    computed_at, step, stored = json.loads(redis_client.get(keys[0]))  # one JSON text per host
    assert step == 60 and abs(computed_at - time.time()) < 60
    assert {host: json.loads(text) for host, text in stored.items()} == first
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    insert_samples(cpu, [(start + timedelta(minutes=5), 30.0)])
    _, computed = fleet.cached_sparklines([web], start, end, 60)
    assert [v for _, v in computed["web-1"]["cpu"]] == [10.0, 30.0]


def test_the_refresh_job_keeps_the_viewed_organisations_default_range_computed(db, settings, redis_client):
    """The scheduler's job recomputes the last hour of the organisations whose fleet page was
    viewed, so the page's request finds it computed; nobody's view, no work."""
    from collector_server.orgs import scope
    from collector_server.orgs.scope import default_organization_id

    settings.UI_SPARKLINE_CACHE_SECONDS = 10
    org_id = default_organization_id()
    now = timezone.now()
    web = make_host("web-1")
    cpu = make_series(web, "system_cpu_usage_percent")
    insert_samples(cpu, [(now - timedelta(minutes=30), 10.0)])
    assert fleet.refresh_default_sparklines() == {"organizations": 0}  # nobody looked yet
    assert redis_client.keys("*ui-sparklines:*") == []

    with scope.use_organization(org_id):  # a member's page view, as the API runs it
        _, viewed = fleet.cached_sparklines([web], now - timedelta(hours=1), now, 60)
    assert [v for _, v in viewed["web-1"]["cpu"]] == [10.0]
    redis_client.delete(*redis_client.keys("*ui-sparklines:*"))  # as if the copy had expired

    insert_samples(cpu, [(now - timedelta(minutes=20), 30.0)])
    redis_client.delete(f"{fleet.streams.prefix()}:ui-sparklines-refresh")
    assert fleet.refresh_default_sparklines() == {"organizations": 1}
    assert fleet.refresh_default_sparklines() == {"organizations": 0}  # within the lock: not twice
    insert_samples(cpu, [(now - timedelta(minutes=10), 50.0)])  # after the refresh: not in its copy
    with scope.use_organization(org_id):
        later = timezone.now()
        _, served = fleet.cached_sparklines([web], later - timedelta(hours=1), later, 60)
    assert [v for _, v in served["web-1"]["cpu"]] == [10.0, 30.0]  # the job's copy, not a new query


def test_the_fleet_body_spliced_from_the_cache_is_the_fleet_as_json(db, settings, redis_client):
    """The API's body is assembled from per-host JSON texts; it must say what ``fleet`` says."""
    settings.UI_SPARKLINE_CACHE_SECONDS = 300
    end = timezone.now().replace(second=0, microsecond=0)
    start = end - timedelta(minutes=10)
    web = make_host("web-ü", labels={"rack": 'r"1'})
    make_host("idle-1")  # a host without samples: empty sparklines
    cpu = make_series(web, "system_cpu_usage_percent")
    insert_samples(cpu, [(start + timedelta(minutes=1), 10.0), (start + timedelta(minutes=2), 12.5)])
    spliced = json.loads(fleet.fleet_json(start, end, 60))  # the first call fills the cache
    again = json.loads(fleet.fleet_json(start, end, 60))  # the second reads it
    assert spliced == again == {"success": True, "data": fleet.fleet(start, end, 60)}
    hosts = {h["hostname"]: h for h in spliced["data"]["hosts"]}
    assert hosts["web-ü"]["labels"] == {"rack": 'r"1'} and hosts["idle-1"]["sparklines"] == {}
    assert [v for _, v in hosts["web-ü"]["sparklines"]["cpu"]] == [10.0, 12.5]
