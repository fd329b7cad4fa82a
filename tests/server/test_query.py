"""GET /api/v1/monitoring/query: selection, aggregation, source choice, counter rates."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from collector_server.monitoring import partitions as parts
from collector_server.monitoring.models import RollupState
from tests.server.conftest import insert_rollup, insert_samples, make_host, make_series, minute_floor

URL = "/api/v1/monitoring/query"


@pytest.fixture
def two_hosts(db):
    """web-1 and web-2 with cpu samples every 15 s over 10 minutes aligned to a 10-minute boundary."""
    now = minute_floor(timezone.now())
    end = now - timedelta(minutes=now.minute % 10)
    start = end - timedelta(minutes=10)
    hosts = {}
    for name, base in (("web-1", 10.0), ("web-2", 50.0)):
        host = make_host(name)
        series = make_series(host, "system_cpu_usage_percent")
        points = [(start + timedelta(seconds=15 * i), base + i % 4) for i in range(40)]
        insert_samples(series, points)
        hosts[name] = (host, series, points)
    return start, end, hosts


def query(api, **params):
    return api.get(URL, params)


def test_avg_per_minute_matches_hand_computed_average(api, two_hosts):
    start, end, hosts = two_hosts
    response = query(
        api, metric="system_cpu_usage_percent", start=start.timestamp(), end=end.timestamp(), step="1m"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["success"] is True
    assert body["count"] == 2
    by_host = {s["labels"]["host"]: s["points"] for s in body["data"]["series"]}
    points = hosts["web-1"][2]
    first_minute = [v for ts, v in points if ts < start + timedelta(minutes=1)]
    assert by_host["web-1"][0] == [
        int(start.timestamp()),
        pytest.approx(sum(first_minute) / len(first_minute)),
    ]
    assert len(by_host["web-1"]) == 10
    assert by_host["web-2"][0][1] == pytest.approx(50 + sum(range(4)) / 4)


def test_matcher_selects_one_host_and_negative_matcher_excludes_it(api, two_hosts):
    start, end, _ = two_hosts
    common = {"metric": "system_cpu_usage_percent", "start": start.timestamp(), "end": end.timestamp()}
    only = query(api, **common, **{"match[]": "host=web-2"}).json()["data"]["series"]
    assert [s["labels"]["host"] for s in only] == ["web-2"]
    other = query(api, **common, **{"match[]": "host!=web-2"}).json()["data"]["series"]
    assert [s["labels"]["host"] for s in other] == ["web-1"]
    regex = query(api, **common, **{"match[]": "host=~web-.*"}).json()["data"]["series"]
    assert len(regex) == 2
    none = query(api, **common, **{"match[]": "host!~web-.*"}).json()["data"]["series"]
    assert none == []


def test_by_label_groups_series_and_max_spans_both_hosts(api, two_hosts):
    start, end, hosts = two_hosts
    for host in hosts.values():
        host[1].labels["role"] = "web"
        host[1].save()
    body = query(
        api,
        metric="system_cpu_usage_percent",
        start=start.timestamp(),
        end=end.timestamp(),
        step="10m",
        agg="max",
        by="role",
    ).json()
    # Buckets are aligned to multiples of the step since 1970 (stable while a dashboard polls).
    expected: dict[int, float] = {}
    for _, _, points in hosts.values():
        for ts, value in points:
            bucket = int(ts.timestamp()) // 600 * 600
            expected[bucket] = max(expected.get(bucket, value), value)
    assert body["data"]["series"] == [
        {"labels": {"role": "web"}, "points": [[b, v] for b, v in sorted(expected.items())]}
    ]
    assert max(expected.values()) == 53.0


def test_percentile_and_count_and_last(api, two_hosts):
    start, end, hosts = two_hosts
    common = {
        "metric": "system_cpu_usage_percent",
        "start": start.timestamp(),
        "end": end.timestamp(),
        "step": "10m",
        "match[]": "host=web-1",
    }
    count = query(api, **common, agg="count").json()["data"]["series"][0]["points"][0][1]
    assert count == 40
    last = query(api, **common, agg="last").json()["data"]["series"][0]["points"][0][1]
    assert last == hosts["web-1"][2][-1][1]
    p99 = query(api, **common, agg="p99").json()
    # Percentiles read raw samples whatever the step: values cycle 10, 11, 12, 13.
    assert p99["data"]["source"] == "raw"
    assert p99["data"]["series"][0]["points"][0][1] == pytest.approx(13.0)
    p95 = query(api, **{**common, "agg": "p95", "step": "1h"}).json()
    assert p95["data"]["source"] == "raw"
    assert [p[1] for p in p95["data"]["series"][0]["points"]] == [pytest.approx(13.0)]


def test_rate_of_counter_with_reset_is_never_negative(api, db):
    host = make_host("db-1")
    series = make_series(host, "system_network_bytes_sent_total", kind="counter")
    start = minute_floor(timezone.now()) - timedelta(minutes=2)
    # +100 every 10 s, then a reset to 50 (increase 50), then +100 again.
    values = [1000, 1100, 1200, 1300, 1400, 1500, 50, 150, 250, 350, 450, 550]
    insert_samples(series, [(start + timedelta(seconds=10 * i), v) for i, v in enumerate(values)])
    body = query(
        api,
        metric="system_network_bytes_sent_total",
        agg="rate",
        start=start.timestamp(),
        end=(start + timedelta(minutes=2)).timestamp(),
        step="60s",
    ).json()
    points = body["data"]["series"][0]["points"]
    # minute 1: increases 100 x5 (first sample has no predecessor) = 500 / 60 s
    # minute 2: reset counts 50, then 100 x5 = 550 / 60 s
    assert [p[1] for p in points] == [pytest.approx(500 / 60), pytest.approx(550 / 60)]
    assert all(p[1] >= 0 for p in points)


def test_rate_counts_the_increase_from_the_sample_before_the_range(api, db):
    host = make_host("db-1")
    series = make_series(host, "system_network_bytes_recv_total", kind="counter")
    start = minute_floor(timezone.now()) - timedelta(minutes=1)
    insert_samples(series, [(start - timedelta(seconds=30), 100.0), (start + timedelta(seconds=30), 700.0)])
    body = query(
        api,
        metric="system_network_bytes_recv_total",
        agg="rate",
        start=start.timestamp(),
        end=(start + timedelta(minutes=1)).timestamp(),
        step="60s",
    ).json()
    assert body["data"]["series"][0]["points"] == [[int(start.timestamp()), 10.0]]


def test_rate_from_hourly_rollups_with_a_finer_step_is_per_second_of_the_hour(api, db):
    host = make_host("db-1")
    series = make_series(host, "system_network_bytes_sent_total", kind="counter")
    now = timezone.now()
    done = now.replace(minute=0, second=0, microsecond=0)
    buckets = [done - timedelta(hours=h) for h in range(1, 5)]
    for day in {b.date() for b in buckets}:
        parts.ensure_partition(parts.ROLLUP_1H, day)
    insert_rollup("monitoring_rollup_1h", series, [(b, 0.0, 1.0, 0.0, 240, 1.0, 7200.0) for b in buckets])
    RollupState.objects.create(level="1h", done_until=done)
    body = query(
        api,
        metric="system_network_bytes_sent_total",
        agg="rate",
        start=(now - timedelta(days=8)).timestamp(),
        end=now.timestamp(),
        step="5m",
    ).json()
    assert body["data"]["source"] == "1h"
    assert [p[1] for p in body["data"]["series"][0]["points"]] == [2.0] * 4


def test_rate_on_a_gauge_is_rejected_naming_agg(api, two_hosts):
    response = query(api, metric="system_cpu_usage_percent", agg="rate")
    assert response.status_code == 400
    assert "agg" in response.json()["detail"]
    assert "gauge" in response.json()["error"]


def test_long_range_reads_hourly_rollups_and_recent_tail_from_raw(api, db):
    host = make_host("app-1")
    series = make_series(host, "system_memory_usage_percent")
    now = timezone.now()
    done = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    buckets = [done - timedelta(hours=h) for h in range(1, 24 * 10)]
    for bucket in {b.date() for b in buckets}:
        parts.ensure_partition(parts.ROLLUP_1H, bucket)
    insert_rollup(
        "monitoring_rollup_1h",
        series,
        [(b, 10.0, 30.0, 20.0 * 60, 60, 25.0, None) for b in buckets],
    )
    RollupState.objects.create(level="1h", done_until=done)
    # Recent raw samples after done_until: aggregated on the fly into hourly buckets.
    insert_samples(series, [(done + timedelta(minutes=5), 80.0), (done + timedelta(minutes=6), 90.0)])
    body = query(
        api,
        metric="system_memory_usage_percent",
        start=(now - timedelta(days=8)).timestamp(),
        end=now.timestamp(),
        step="1h",
    ).json()
    assert body["data"]["source"] == "1h"
    points = body["data"]["series"][0]["points"]
    assert points[-1] == [int(done.timestamp()), 85.0]
    assert points[0][1] == 20.0
    in_range = [b for b in buckets if b >= now - timedelta(days=8)]
    assert len(points) == len(in_range) + 1  # rollup buckets in range, plus the raw tail bucket


def test_six_hour_range_with_30s_step_reads_raw_and_a_day_reads_1m(api, two_hosts):
    now = timezone.now()
    common = {"metric": "system_cpu_usage_percent", "end": now.timestamp()}
    six = query(api, **common, start=(now - timedelta(hours=6)).timestamp(), step="30s").json()
    assert six["data"]["source"] == "raw"
    day = query(api, **common, start=(now - timedelta(days=1)).timestamp(), step="30s").json()
    assert day["data"]["source"] == "1m"
    # No 1m rollups and no RollupState: the whole range is aggregated from raw into minutes.
    assert day["data"]["series"][0]["points"][0][1] > 0


def test_rate_with_a_step_that_is_not_whole_rollup_buckets_stays_steady(api, db):
    """A 90 m step over hourly rollups is widened to 2 h: a steady counter gives a steady rate."""
    host = make_host("db-2")
    series = make_series(host, "system_network_bytes_recv_total", kind="counter")
    now = timezone.now()
    done = now.replace(minute=0, second=0, microsecond=0)
    buckets = [done - timedelta(hours=h) for h in range(1, 13)]
    for day in {b.date() for b in buckets}:
        parts.ensure_partition(parts.ROLLUP_1H, day)
    insert_rollup("monitoring_rollup_1h", series, [(b, 0.0, 1.0, 0.0, 360, 1.0, 3600.0) for b in buckets])
    RollupState.objects.create(level="1h", done_until=done)
    body = query(
        api,
        metric="system_network_bytes_recv_total",
        agg="rate",
        start=(now - timedelta(days=8)).timestamp(),
        end=now.timestamp(),
        step="90m",
    ).json()
    assert body["data"]["source"] == "1h"
    rates = [p[1] for p in body["data"]["series"][0]["points"]]
    assert len(rates) >= 5
    assert set(rates[1:-1]) == {1.0}  # inner buckets are whole: exactly one byte per second


@pytest.mark.parametrize(
    ("agg", "step"),
    [(agg, 60) for agg in ("avg", "min", "max", "sum", "count", "last", "rate", "p95")]
    + [("avg", 180), ("rate", 180), ("p99", 180), ("max", 15), ("rate", 15)],
)
def test_per_series_path_answers_what_the_aggregating_path_does(db, monkeypatch, agg, step):
    """One series per group is answered series by series (query._per_series_sql; at a step of one
    rollup bucket each rollup row is a point): the same points as aggregating every row together,
    over rollups plus the raw tail after done_until (or raw samples at a 15 s step), as lists and
    as the API's JSON text."""
    import orjson

    from collector_server.monitoring import query as engine

    host = make_host("direct-1")
    first = make_series(host, "system_network_bytes_sent_total", kind="counter", interface="eth0")
    other = make_series(host, "system_network_bytes_sent_total", kind="counter", interface="eth1")
    now = minute_floor(timezone.now())
    done = now - timedelta(minutes=5)
    buckets = [done - timedelta(minutes=m) for m in range(1, 30)]
    for day in {b.date() for b in buckets} | {now.date()}:
        parts.ensure_partition(parts.ROLLUP_1M, day)
        parts.ensure_partition(parts.SAMPLES, day)
    insert_rollup(
        "monitoring_rollup_1m",
        first,
        [(b, 1.0, 9.0, 20.0 + i, 4, 7.0 + i, 60.0) for i, b in enumerate(buckets)],
    )
    insert_rollup("monitoring_rollup_1m", other, [(b, 2.0, 3.0, 10.0, 4, 3.0, 0.0) for b in buckets[::2]])
    RollupState.objects.create(level="1m", done_until=done)
    # The raw tail: a counter that resets in the second minute after done_until.
    insert_samples(
        first, [(done + timedelta(seconds=15 * i), v) for i, v in enumerate([100, 160, 220, 280, 40, 90])]
    )
    start, end = now - timedelta(minutes=40), now

    def run(json_points: bool):
        result = engine.run_query(
            "system_network_bytes_sent_total", [], start, end, step, agg, json_points=json_points
        )
        return [
            {
                "labels": s["labels"],
                "points": orjson.loads(orjson.dumps(s["points"])) if json_points else s["points"],
            }
            for s in result.series
        ]

    direct, direct_json = run(False), run(True)
    monkeypatch.setattr(engine, "PER_SERIES_PATH", False)  # every query through the aggregating path
    aggregated = run(False)
    # Percentiles and a 15 s step read raw samples, which only the first series has.
    assert len(aggregated) == (1 if agg in engine.PERCENTILES or step == 15 else 2)
    if step == 60 and agg not in engine.PERCENTILES:
        assert len(aggregated[0]["points"]) == len(buckets) + 2  # every rollup bucket, two tail minutes
    assert all(s["points"] for s in aggregated)
    for got in (direct, direct_json):
        assert [s["labels"] for s in got] == [s["labels"] for s in aggregated]
        for mine, theirs in zip(got, aggregated, strict=True):
            assert [p[0] for p in mine["points"]] == [p[0] for p in theirs["points"]]
            assert [p[1] for p in mine["points"]] == pytest.approx([p[1] for p in theirs["points"]])
