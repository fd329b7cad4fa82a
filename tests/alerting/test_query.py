"""Rule queries against real samples in Postgres."""

from __future__ import annotations

from datetime import timedelta

import pytest

from collector_server.alerts import query as q


def run(query_type: str, query: dict, now) -> dict[str, float | None]:
    qt = q.get(query_type)
    result = qt.evaluate(qt.validate(query), now)
    return {key: group.value for key, group in result.groups.items()}


def test_avg_min_max_are_grouped_by_host(metrics, now):
    for i, value in enumerate([10, 20, 30]):
        metrics.add("cpu", [(now - timedelta(seconds=10 * i), value)], host="a")
    metrics.gauge("cpu", now, 90, host="b")
    base = {"metric": "cpu", "window": 60, "group_by": ["host"]}
    assert run("metric", {**base, "aggregation": "avg"}, now) == {"host=a": 20.0, "host=b": 90.0}
    assert run("metric", {**base, "aggregation": "max"}, now)["host=a"] == 30.0
    assert run("metric", {**base, "aggregation": "min"}, now)["host=a"] == 10.0
    assert run("metric", {**base, "aggregation": "count"}, now)["host=a"] == 3.0


def test_samples_outside_the_window_are_ignored(metrics, now):
    metrics.add("cpu", [(now - timedelta(seconds=120), 100.0), (now - timedelta(seconds=5), 10.0)], host="a")
    assert run(
        "metric", {"metric": "cpu", "aggregation": "max", "window": 60, "group_by": ["host"]}, now
    ) == {"host=a": 10.0}


def test_rate_treats_a_decrease_as_a_counter_reset(metrics, now):
    points = [(now - timedelta(seconds=s), v) for s, v in [(50, 100), (40, 160), (30, 10), (20, 40)]]
    metrics.add("reqs_total", points, kind="counter", host="a")
    # 100→160 (+60), reset to 10 (+10), 10→40 (+30): 100 over the window
    value = run("metric", {"metric": "reqs_total", "aggregation": "increase", "window": 60}, now)
    assert value == {"": 100.0}
    rate = run("metric", {"metric": "reqs_total", "aggregation": "rate", "window": 60}, now)
    assert rate[""] == pytest.approx(100 / 60)


def test_increase_counts_the_step_across_the_window_edge(metrics, now):
    points = [(now - timedelta(seconds=s), v) for s, v in [(70, 100), (50, 130), (30, 160)]]
    metrics.add("reqs_total", points, kind="counter", host="a")
    # the last sample before the window (100 at -70 s) is the base: 100→130→160 is +60
    value = run("metric", {"metric": "reqs_total", "aggregation": "increase", "window": 60}, now)
    assert value == {"": 60.0}


def test_a_new_sdk_process_counts_from_zero_but_a_host_counter_from_its_first_sample(metrics, now):
    points = [(now - timedelta(seconds=40), 5.0), (now - timedelta(seconds=20), 12.0)]
    metrics.add("http_requests_total", points, kind="counter", host="a", instance="p1")
    metrics.add("system_network_bytes_sent_total", points, kind="counter", host="a")
    query = {"aggregation": "increase", "window": 60, "group_by": ["host"]}
    # an SDK counter (with `instance`) started in the window: its first value was counted by it
    assert run("metric", {**query, "metric": "http_requests_total"}, now) == {"host=a": 12.0}
    # a host counter's first value is everything since boot: only the steps count
    assert run("metric", {**query, "metric": "system_network_bytes_sent_total"}, now) == {"host=a": 7.0}


@pytest.mark.parametrize("gap", [80, 3600])  # just before the window; after an hour-long gap
def test_an_sdk_counter_seen_before_the_window_is_not_counted_twice(metrics, now, gap):
    points = [(now - timedelta(seconds=s), v) for s, v in [(gap, 5.0), (20, 12.0)]]
    metrics.add("http_requests_total", points, kind="counter", host="a", instance="p1")
    query = {"metric": "http_requests_total", "aggregation": "increase", "window": 60}
    assert run("metric", query, now) == {"": 7.0}


def test_p95_uses_percentile_over_raw_samples(metrics, now):
    metrics.add("latency", [(now - timedelta(seconds=i), float(i)) for i in range(100)])
    assert run("metric", {"metric": "latency", "aggregation": "p95", "window": 120}, now)[
        ""
    ] == pytest.approx(94.05)


def test_matchers_select_series_and_missing_label_matches_empty(metrics, now):
    metrics.gauge("system_cpu_usage_percent", now, 50, host="a")
    metrics.gauge("system_cpu_usage_percent", now, 99, host="a", core="0")
    query = {
        "metric": "system_cpu_usage_percent",
        "matchers": [{"name": "core", "op": "=", "value": ""}],
        "aggregation": "avg",
        "window": 60,
        "group_by": ["host"],
    }
    assert run("metric", query, now) == {"host=a": 50.0}
    regex = {**query, "matchers": [{"name": "core", "op": "=~", "value": "[0-9]+"}]}
    assert run("metric", regex, now) == {"host=a": 99.0}


def test_series_without_recent_data_is_a_group_with_no_value(metrics, now):
    metrics.gauge("cpu", now - timedelta(minutes=10), 50, host="quiet")
    metrics.gauge("cpu", now, 50, host="busy")
    assert run("metric", {"metric": "cpu", "window": 60, "group_by": ["host"]}, now) == {
        "host=quiet": None,
        "host=busy": 50.0,
    }


def test_ratio_computes_error_rate_from_counter_increases(metrics, now):
    t0, t1 = now - timedelta(seconds=50), now - timedelta(seconds=10)
    metrics.add("http_requests_total", [(t0, 100), (t1, 300)], kind="counter", service="api", route="/a")
    metrics.add("http_requests_total", [(t0, 0), (t1, 200)], kind="counter", service="api", route="/b")
    metrics.add("http_request_errors_total", [(t0, 5), (t1, 65)], kind="counter", service="api", route="/a")
    query = {
        "numerator": {"metric": "http_request_errors_total", "aggregation": "increase", "window": 60},
        "denominator": {"metric": "http_requests_total", "aggregation": "increase", "window": 60},
        "scale": 100,
        "group_by": ["service"],
    }
    assert run("ratio", query, now) == {"service=api": pytest.approx(15.0)}


def test_long_windows_read_the_one_minute_rollups(metrics, now):
    from django.db import connection

    from collector_server.monitoring import partitions

    sid = metrics.series("cpu", host="a")
    partitions.ensure_partition(partitions.ROLLUP_1M, now.date())
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO monitoring_rollup_1m (series_id, bucket, min, max, sum, count, last, increase) "
            "VALUES (%s, %s, 10, 30, 120, 6, 20, 0), (%s, %s, 50, 70, 360, 6, 60, 0)",
            [sid, now - timedelta(minutes=30), sid, now - timedelta(minutes=20)],
        )
    query = {"metric": "cpu", "window": 7200, "group_by": ["host"]}
    assert run("metric", {**query, "aggregation": "avg"}, now) == {"host=a": 40.0}
    assert run("metric", {**query, "aggregation": "max"}, now) == {"host=a": 70.0}


def test_host_down_reports_seconds_since_last_seen(db, now):
    from collector_server.monitoring.models import Host

    Host.objects.create(agent_id="a", hostname="web-1", last_seen=now - timedelta(minutes=5))
    Host.objects.create(agent_id="b", hostname="web-2", last_seen=now - timedelta(seconds=10))
    assert run("host_down", {}, now) == {"host=web-1": 300.0, "host=web-2": 10.0}


def test_batched_scan_gives_the_same_values_as_one_query_per_rule(metrics, now):
    for i in range(20):
        metrics.add(
            "cpu",
            [(now - timedelta(seconds=s), float((i * 7 + s) % 100)) for s in range(0, 300, 10)],
            host=f"h{i % 4}",
            core=str(i),
        )
    base = {"metric": "cpu", "matchers": [], "group_by": ["host"]}
    specs = [("avg", 60), ("max", 120), ("p95", 300), ("count", 60), ("last", 60)]
    batched = q.evaluate_metric_batch(base, specs, now, lookback=300)
    for aggregation, window in specs:
        single = run("metric", {**base, "aggregation": aggregation, "window": window}, now)
        assert {k: g.value for k, g in batched[(aggregation, window)].groups.items()} == pytest.approx(single)
