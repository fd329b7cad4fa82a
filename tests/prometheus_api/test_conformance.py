"""The same samples in fleetwatch and in a real Prometheus give the same PromQL answers.

Gauges, counters with resets and a classic histogram are encoded once as a remote-write
request and sent to both: to Prometheus' remote-write receiver, and to fleetwatch's
/prometheus/api/v1/write, drained by the real ingest consumer into Postgres. Every query
of QUERIES then runs as an instant query at several times and as a range query on both,
and the answers must agree within floating-point tolerance.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager

import pytest

from alerting_worker.ingest.consumer import StreamConsumer
from alerting_worker.ingest.metrics_handler import CACHE, MetricsHandler
from shared import streams

from .real_prometheus import get_json, post_write, running_prometheus, write_request

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

INTERVAL_MS = 15_000
POINTS = 200  # 50 minutes: one remote-write request, within Prometheus' head block
HOSTS = ("web-1", "web-2")
BUCKETS = ("0.1", "0.5", "1", "+Inf")

QUERIES = [
    "fw_temp_celsius",
    'fw_temp_celsius{sensor="cpu"}',
    'fw_temp_celsius{sensor!="cpu"}',
    'fw_temp_celsius{host=~"web-.*", sensor=~"c.u"}',
    'fw_temp_celsius{sensor!~"gpu|disk"}',
    "fw_temp_celsius offset 5m",
    "rate(fw_requests_total[5m])",
    "rate(fw_requests_total[1m] offset 2m)",
    "irate(fw_requests_total[2m])",
    "increase(fw_requests_total[10m])",
    "delta(fw_temp_celsius[5m])",
    "idelta(fw_temp_celsius[3m])",
    "avg_over_time(fw_temp_celsius[5m])",
    "min_over_time(fw_temp_celsius[5m])",
    "max_over_time(fw_temp_celsius[5m])",
    "sum_over_time(fw_temp_celsius[2m])",
    "count_over_time(fw_temp_celsius[4m])",
    "last_over_time(fw_temp_celsius[1m])",
    "stddev_over_time(fw_temp_celsius[10m])",
    "stdvar_over_time(fw_temp_celsius[10m])",
    "quantile_over_time(0.9, fw_temp_celsius[10m])",
    "sum(fw_temp_celsius)",
    "sum by (host) (rate(fw_requests_total[5m]))",
    "avg without (sensor) (fw_temp_celsius)",
    "min by (sensor) (fw_temp_celsius)",
    "max(fw_temp_celsius)",
    "count by (host) (fw_temp_celsius)",
    "topk(2, fw_temp_celsius)",
    "bottomk by (host) (1, fw_temp_celsius)",
    "quantile(0.5, fw_temp_celsius)",
    "histogram_quantile(0.9, sum by (le) (rate(fw_latency_seconds_bucket[5m])))",
    "histogram_quantile(0.5, rate(fw_latency_seconds_bucket[10m]))",
    "rate(fw_latency_seconds_sum[5m]) / rate(fw_latency_seconds_count[5m])",
    "fw_temp_celsius * 2 + 1",
    "100 - fw_temp_celsius",
    "-fw_temp_celsius",
    "fw_temp_celsius % 7",
    "fw_temp_celsius ^ 2",
    "fw_temp_celsius > 50",
    "fw_temp_celsius > bool 50",
    "50 < fw_temp_celsius",
    'fw_temp_celsius{sensor="cpu"} / ignoring(sensor) fw_temp_celsius{sensor="gpu"}',
    'fw_temp_celsius{sensor="cpu"} - on(host) fw_temp_celsius{sensor="gpu"}',
    "fw_temp_celsius * on(host) group_left(rack) fw_host_info",
    "fw_host_info * on(host) group_right(rack) fw_temp_celsius",
    "fw_temp_celsius and fw_temp_celsius > 50",
    'fw_temp_celsius{sensor="cpu"} or fw_host_info',
    "fw_temp_celsius unless fw_temp_celsius > 50",
    "abs(fw_temp_celsius - 50)",
    "ceil(fw_temp_celsius)",
    "floor(fw_temp_celsius)",
    "round(fw_temp_celsius, 5)",
    "clamp_min(fw_temp_celsius, 45)",
    "clamp_max(fw_temp_celsius, 55)",
    "time() - 1",
    "vector(1)",
    "scalar(sum(fw_temp_celsius))",
    "fw_temp_celsius / scalar(max(fw_temp_celsius))",
    'absent(nonexistent_metric{job="x"})',
    "absent(fw_temp_celsius)",
    "count(fw_temp_celsius > 40)",
    "sum by (code) (increase(fw_requests_total[5m]))",
]


def _temperature(host: int, sensor: int, i: int) -> float:
    return 40 + 10 * host + 5 * sensor + 8 * math.sin(i / 7 + sensor) + (i % 5) * 0.25


def _requests(host: int, code: int, i: int) -> float:
    # Counters that reset (a process restart) at different points.
    reset = 90 + 40 * host + 17 * code
    step = 3 + host + 2 * code + (i % 3)
    return float(step * (i if i < reset else i - reset) + (0 if i < reset else 1))


def samples(
    base_ms: int, phase_ms: int = 7_000
) -> dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]:
    """Every series of the test: gauges, counters with resets, a histogram, an info metric.

    Samples are `phase_ms` after each 15 s mark: with 0, every fourth one falls exactly on a
    minute (the edge of a 1-minute rollup bucket and of the windows of minute steps).
    """
    times = [base_ms + INTERVAL_MS * i + phase_ms for i in range(POINTS)]
    out: dict[tuple[tuple[str, str], ...], list[tuple[int, float]]] = {}
    # web-2's GPU sensor and 500 counter miss 4 minutes (an agent down): windows with a gap.
    gap = range(120, 136)
    for h, host in enumerate(HOSTS):
        for s, sensor in enumerate(("cpu", "gpu")):
            key = (("__name__", "fw_temp_celsius"), ("host", host), ("sensor", sensor))
            skip = gap if (h, s) == (1, 1) else ()
            out[key] = [(t, _temperature(h, s, i)) for i, t in enumerate(times) if i not in skip]
        for c, code in enumerate(("200", "500")):
            key = (("__name__", "fw_requests_total"), ("code", code), ("host", host))
            skip = gap if (h, c) == (1, 1) else ()
            out[key] = [(t, _requests(h, c, i)) for i, t in enumerate(times) if i not in skip]
        out[(("__name__", "fw_host_info"), ("host", host), ("rack", f"r{h}"))] = [(t, 1.0) for t in times]
        cumulative = [0.0] * len(BUCKETS)
        total = 0.0
        histogram: dict[str, list[tuple[int, float]]] = {le: [] for le in BUCKETS}
        sums, counts = [], []
        for i, t in enumerate(times):
            for b in range(len(BUCKETS)):
                cumulative[b] += (b + 1) * (1 + (i + h) % 4)
            total += 0.3 * (1 + i % 4)
            for b, le in enumerate(BUCKETS):
                histogram[le].append((t, cumulative[b]))
            sums.append((t, total))
            counts.append((t, cumulative[-1]))
        for le, points in histogram.items():
            out[(("__name__", "fw_latency_seconds_bucket"), ("host", host), ("le", le))] = points
        out[(("__name__", "fw_latency_seconds_sum"), ("host", host))] = sums
        out[(("__name__", "fw_latency_seconds_count"), ("host", host))] = counts
    return out


def _key(metric: dict[str, str]) -> tuple:
    return tuple(sorted(metric.items()))


def _same(a: str, b: str) -> bool:
    x, y = float(a), float(b)
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    return x == y or math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9)


def differences(query: str, ours: dict, theirs: dict) -> list[str]:
    """Compare two API answers; return what differs (empty when they agree)."""
    if theirs.get("status") != "success":
        return [f"{query}: Prometheus refused it: {theirs}"]
    if ours.get("status") != "success":
        return [f"{query}: fleetwatch refused it: {ours}"]
    a, b = ours["data"], theirs["data"]
    if a["resultType"] != b["resultType"]:
        return [f"{query}: result type {a['resultType']} != {b['resultType']}"]
    if a["resultType"] == "scalar":
        same = a["result"][0] == b["result"][0] and _same(a["result"][1], b["result"][1])
        return [] if same else [f"{query}: scalar {a['result']} != {b['result']}"]
    field = "value" if a["resultType"] == "vector" else "values"
    mine = {_key(r["metric"]): r[field] for r in a["result"]}
    real = {_key(r["metric"]): r[field] for r in b["result"]}
    if set(mine) != set(real):
        return [f"{query}: series {sorted(mine)} != {sorted(real)}"]
    problems = []
    for key, expected in real.items():
        got = mine[key]
        pairs = [got] if field == "value" else got
        wanted = [expected] if field == "value" else expected
        if [p[0] for p in pairs] != [p[0] for p in wanted]:
            problems.append(f"{query} {dict(key)}: timestamps differ")
        elif not all(_same(p[1], q[1]) for p, q in zip(pairs, wanted, strict=True)):
            bad = next((p, q) for p, q in zip(pairs, wanted, strict=True) if not _same(p[1], q[1]))
            problems.append(f"{query} {dict(key)}: {bad[0]} != {bad[1]}")
    return problems


@contextmanager
def _loaded(api, redis_client, tmp_path, phase_ms: int = 7_000):
    """Prometheus and fleetwatch, both fed the same remote-write request; yield (Prometheus URL, base s)."""
    base_ms = (int(time.time()) // 60 * 60 - 55 * 60) * 1000
    body = write_request(samples(base_ms, phase_ms))
    CACHE.clear()
    with running_prometheus(tmp_path, "global:\n  scrape_interval: 15s\n") as url:
        assert post_write(f"{url}/api/v1/write", body) == 204
        response = api.generic(
            "POST",
            "/prometheus/api/v1/write",
            body,
            content_type="application/x-protobuf",
            HTTP_CONTENT_ENCODING="snappy",
        )
        assert response.status_code == 204, response.content
        consumer = StreamConsumer(redis_client, streams.METRICS, MetricsHandler(), consumer="t", block_ms=0)
        result = consumer.drain(max_seconds=30)
        assert result.rows == sum(len(v) for v in samples(base_ms, phase_ms).values())
        yield url, base_ms // 1000
    CACHE.clear()


@pytest.fixture
def loaded(api, redis_client, tmp_path):
    with _loaded(api, redis_client, tmp_path) as answer:
        yield answer


def _ours(api, path: str, params: dict) -> dict:
    return api.get(f"/prometheus/api/v1/{path}", params).json()


def test_instant_and_range_queries_agree_with_prometheus(api, loaded):
    url, base = loaded
    assert len(QUERIES) >= 40
    problems: list[str] = []
    answered = 0  # range queries Prometheus answers with data: the comparison is not vacuous
    for query in QUERIES:
        for at in (base + 20 * 60, base + 37 * 60 + 30, base + 50 * 60):
            params = {"query": query, "time": at}
            problems += differences(
                query, _ours(api, "query", params), get_json(url, "/api/v1/query", params)
            )
        params = {"query": query, "start": base + 12 * 60, "end": base + 49 * 60, "step": "30s"}
        theirs = get_json(url, "/api/v1/query_range", params)
        answered += bool(theirs.get("data", {}).get("result"))
        problems += differences(f"range {query}", _ours(api, "query_range", params), theirs)
    assert not problems, "\n".join(problems)
    assert answered >= len(QUERIES) - 2


def test_a_range_vector_instant_query_returns_the_raw_samples(api, loaded):
    url, base = loaded
    params = {"query": "fw_requests_total[2m]", "time": base + 30 * 60}
    assert not differences(
        "range vector", _ours(api, "query", params), get_json(url, "/api/v1/query", params)
    )


def test_grafana_request_sequence_answers_like_prometheus(api, loaded):
    """What Grafana's Prometheus data source asks when it connects, explores and draws a panel."""
    url, base = loaded
    ours = _ours(api, "status/buildinfo", {})
    assert ours["status"] == "success"
    assert ours["data"]["version"].split(".")[0] == "2"
    window = {"start": base, "end": base + 50 * 60}
    mine = _ours(api, "labels", window)["data"]
    real = get_json(url, "/api/v1/labels", window)["data"]
    assert mine == real
    for name in ("__name__", "host", "le"):
        assert _ours(api, f"label/{name}/values", window) == get_json(
            url, f"/api/v1/label/{name}/values", window
        )
    series = {"match[]": "fw_temp_celsius", **window}
    mine = sorted(_key(m) for m in _ours(api, "series", series)["data"])
    real = sorted(_key(m) for m in get_json(url, "/api/v1/series", series)["data"])
    assert mine == real
    panel = {
        "query": 'sum by (host) (rate(fw_requests_total{code="200"}[2m]))',
        "start": base + 10 * 60,
        "end": base + 50 * 60,
        "step": 15,
    }
    assert not differences(
        "panel", _ours(api, "query_range", panel), get_json(url, "/api/v1/query_range", panel)
    )


# The queries the rollups answer (range functions rollups hold, instant selectors, and what is
# built on them): every query of QUERIES but those that always read raw samples.
RAW_ONLY = ("irate(", "idelta(", "stddev_over_time(", "stdvar_over_time(", "quantile_over_time(")
ROLLUP_QUERIES = [q for q in QUERIES if not any(name in q for name in RAW_ONLY)]


@pytest.mark.parametrize("phase_ms", [0, 7_000], ids=["samples-on-the-minute", "samples-7s-past"])
def test_range_queries_over_rollups_agree_with_prometheus(
    api, redis_client, tmp_path, phase_ms, monkeypatch, settings
):
    """Minute steps read the 1- and 5-minute rollups, and give Prometheus' answers from them alone.

    The real rollup job rolls the samples up (1 minute, 5 minutes and 1 hour); then every raw
    sample is deleted, so an answer can only come from the rollups. Steps of 1, 2 and 5 minutes
    over 37 minutes, windows of whole minutes: the engine's exact rollup path; and steps of 5
    and 10 minutes from a time of whole 5 minutes, where windows of whole 5 minutes read the
    5-minute rollups (docs/prometheus.md). Both the SQL and the numpy fast path answer, the
    latter through the results cache (blocks computed apart and joined).
    """
    settings.PROMQL_RESULTS_CACHE = True
    from datetime import UTC, datetime

    from django.db import connection

    from alerting_worker.maintenance import rollups
    from collector_server.prometheus_api.promql import rollup_windows, vectorised

    read = []
    original = rollup_windows.window_query

    def recording(*args, **kwargs):
        read.append(args[4])  # the level
        return original(*args, **kwargs)

    monkeypatch.setattr(rollup_windows, "window_query", recording)
    computed = vectorised.window_values

    def recording_vectorised(*args, **kwargs):
        read.append(args[4])  # the level
        return computed(*args, **kwargs)

    monkeypatch.setattr(vectorised, "window_values", recording_vectorised)
    with _loaded(api, redis_client, tmp_path, phase_ms) as (url, base):
        now = datetime.fromtimestamp(time.time(), UTC)
        rollups.run_rollups(now=now)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*), count(*) FILTER (WHERE first_ts IS NOT NULL AND last_ts IS NOT NULL "
                "AND first IS NOT NULL AND resets IS NOT NULL AND first_reset IS NOT NULL) "
                "FROM monitoring_rollup_1m"
            )
            buckets, with_edges = cursor.fetchone()
            assert buckets >= 50 and with_edges == buckets
            cursor.execute(
                "SELECT count(*), count(*) FILTER (WHERE first_ts IS NOT NULL AND resets IS NOT NULL) "
                "FROM monitoring_rollup_5m"
            )
            buckets, with_edges = cursor.fetchone()
            assert buckets >= 10 and with_edges == buckets
            cursor.execute("SELECT count(*) FROM monitoring_rollup_1m WHERE resets > 0")
            assert cursor.fetchone()[0] >= 4  # the counters' resets are in the buckets
            cursor.execute("TRUNCATE monitoring_sample")
        problems: list[str] = []
        answered = 0
        five = -(-(base + 12 * 60) // 300) * 300  # the first time of whole 5 minutes from base + 12 min
        ranges = [
            (base + 12 * 60, 60),
            (base + 12 * 60, 120),
            (base + 12 * 60, 300),
            (five, 300),
            (five, 600),
        ]
        for query in ROLLUP_QUERIES:
            for start, step in ranges:
                params = {"query": query, "start": start, "end": base + 49 * 60, "step": step}
                theirs = get_json(url, "/api/v1/query_range", params)
                answered += bool(theirs.get("data", {}).get("result"))
                problems += differences(
                    f"start {start - base} step {step} {query}", _ours(api, "query_range", params), theirs
                )
        assert not problems, "\n".join(problems)
        assert answered >= len(ranges) * (len(ROLLUP_QUERIES) - 2)
        assert read and set(read) == {"1m", "5m"}
