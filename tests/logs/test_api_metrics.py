"""GET /api/v1/monitoring/metrics/api and api_summary(): merged histograms, reset-aware increases."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from collector_server.logs.api_metrics import api_summary, quantile

BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]


def series_id(name: str, labels: dict[str, str]) -> int:
    key = ",".join(f"{k}={labels[k]}" for k in sorted(labels))
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO monitoring_series (name, kind, labels, labels_key, created_at) "
            "VALUES (%s, 'counter', %s::jsonb, %s, now()) RETURNING id",
            [name, json.dumps(labels), key],
        )
        return cursor.fetchone()[0]


def samples(sid: int, points: list[tuple[float, float]]) -> None:
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO monitoring_sample (series_id, ts, value) VALUES (%s, to_timestamp(%s), %s)",
            [(sid, ts, value) for ts, value in points],
        )


class FakeSdk:
    """Cumulative counters as one SDK process exports them, written as samples every 10 s."""

    def __init__(
        self,
        host: str,
        route: str = "/api/v1/generate",
        method: str = "POST",
        service: str = "llm",
        instance: str | None = None,
    ):
        self.base = {"route": route, "method": method, "service": service, "host": host}
        if instance is not None:
            self.base["instance"] = instance  # the SDK's per-process label
        self.count = 0
        self.sum = 0.0
        self.buckets = dict.fromkeys([*BOUNDS, float("inf")], 0)
        self.status: dict[str, int] = {}
        self.errors = 0
        self.req_bytes = 0
        self.resp_bytes = 0
        self.points: dict[tuple[str, str], list[tuple[float, float]]] = {}

    def observe(self, seconds: float, status: int = 200) -> None:
        self.count += 1
        self.sum += seconds
        for le in self.buckets:
            if seconds <= le:
                self.buckets[le] += 1
        self.status[str(status)] = self.status.get(str(status), 0) + 1
        self.errors += status >= 500
        self.req_bytes += 100
        self.resp_bytes += 1000

    def snapshot(self, ts: float) -> None:
        """Record the current cumulative values at ts."""
        values = {
            ("http_request_duration_seconds_count", ""): self.count,
            ("http_request_duration_seconds_sum", ""): self.sum,
            ("http_request_errors_total", ""): self.errors,
            ("http_request_size_bytes_sum", ""): self.req_bytes,
            ("http_response_size_bytes_sum", ""): self.resp_bytes,
        }
        for le, n in self.buckets.items():
            values[("http_request_duration_seconds_bucket", "+Inf" if le == float("inf") else str(le))] = n
        for code, n in self.status.items():
            values[("http_requests_total", code)] = n
        for key, value in values.items():
            self.points.setdefault(key, []).append((ts, value))

    def restart(self) -> None:
        """The process restarts: every counter starts again from zero."""
        self.count, self.sum, self.errors, self.req_bytes, self.resp_bytes = 0, 0.0, 0, 0, 0
        self.buckets = dict.fromkeys(self.buckets, 0)
        self.status = {}

    def labels(self, name: str, extra: str) -> dict[str, str]:
        labels = dict(self.base)
        if name == "http_request_duration_seconds_bucket":
            labels["le"] = extra
        elif name == "http_requests_total":
            labels["status"] = extra
        return labels

    def save(self) -> None:
        for (name, extra), points in self.points.items():
            samples(series_id(name, self.labels(name, extra)), points)


def drive(
    sdk: FakeSdk, durations: list[float], start: float, step: float = 10.0, per_step: int = 50
) -> float:
    ts = start
    for i in range(0, len(durations), per_step):
        for seconds in durations[i : i + per_step]:
            sdk.observe(seconds, 500 if seconds > 2.0 else 200)
        sdk.snapshot(ts)
        ts += step
    return ts


@pytest.fixture
def two_hosts(partitions):
    """web-1 serves fast requests, web-2 slow ones; web-2 restarts half way (a counter reset)."""
    rng = random.Random(7)
    now = time.time()
    start = now - 50 * 60
    fast = [rng.uniform(0.0, 0.1) for _ in range(3000)]
    slow = [rng.uniform(0.1, 1.0) for _ in range(1000)]
    web1, web2 = FakeSdk("web-1"), FakeSdk("web-2")
    web1.snapshot(start - 10)  # baseline before any request
    drive(web1, fast, start)
    web2.snapshot(start - 10)
    ts = drive(web2, slow[:500], start)
    web2.restart()
    drive(web2, slow[500:], ts)
    web1.save()
    web2.save()
    return fast + slow


def exact_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * len(ordered)) - 1]


def test_percentiles_merge_buckets_across_hosts_and_resets(api, two_hosts):
    response = api.get("/api/v1/monitoring/metrics/api", {"minutes": 60})
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["count"] == 1
    row = body["data"][0]
    assert (row["endpoint"], row["method"], row["service"]) == ("/api/v1/generate", "POST", "llm")
    assert row["requests"] == 4000  # the reset on web-2 did not lose or double-count requests
    assert row["status_code"] == 200
    assert row["error_count"] == 0
    avg = sum(two_hosts) / len(two_hosts) * 1000
    assert row["avg_response_time_ms"] == pytest.approx(avg, abs=0.001)
    # 3000 requests below 100 ms and 1000 between 100 ms and 1 s (uniform):
    # p50 (rank 2000, about 67 ms) lies in the 50..100 ms bucket, p95 and p99 in 500 ms..1 s.
    assert 50 <= row["p50_response_time_ms"] <= 100
    assert 500 <= row["p95_response_time_ms"] <= 1000
    assert row["p95_response_time_ms"] < row["p99_response_time_ms"] <= 1000
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        exact = exact_quantile(two_hosts, q) * 1000
        assert row[f"{name}_response_time_ms"] == pytest.approx(exact, rel=0.25), name
    assert row["request_size_bytes"] == 100.0
    assert row["response_size_bytes"] == 1000.0
    assert row["response_bytes_total"] == 4_000_000


def test_averaging_per_host_percentiles_would_give_a_different_answer(two_hosts):
    # Guard for the test above: the merged p95 is not the mean of the hosts' p95s.
    fast, slow = two_hosts[:3000], two_hosts[3000:]
    mean_of_p95 = (exact_quantile(fast, 0.95) + exact_quantile(slow, 0.95)) / 2
    assert abs(mean_of_p95 - exact_quantile(two_hosts, 0.95)) > 0.2


def test_window_only_counts_increase_inside_it(api, partitions):
    now = time.time()
    sdk = FakeSdk("web-1", route="/health", method="GET")
    for _ in range(100):
        sdk.observe(0.002)
    sdk.snapshot(now - 3 * 3600)  # 100 requests long ago
    for _ in range(7):
        sdk.observe(0.002)
    sdk.snapshot(now - 60)  # 7 more recently
    sdk.save()
    row = api.get("/api/v1/monitoring/metrics/api", {"minutes": 30}).json()["data"][0]
    assert row["requests"] == 7
    assert row["p99_response_time_ms"] <= 5.0


def test_errors_and_summary(partitions):
    now = time.time()
    sdk = FakeSdk("web-1", route="/api/v1/fail")
    sdk.snapshot(now - 600)
    for seconds in [0.05] * 90 + [3.0] * 10:
        sdk.observe(seconds, 500 if seconds > 2 else 200)
    sdk.snapshot(now - 60)
    sdk.save()
    other = FakeSdk("web-2", route="/api/v1/ok", method="GET")
    other.snapshot(now - 600)
    for _ in range(100):
        other.observe(0.2)
    other.snapshot(now - 60)
    other.save()
    end = datetime.now(UTC)
    summary = api_summary(end - timedelta(hours=1), end)
    assert summary["total_requests"] == 200
    assert summary["error_count"] == 10
    assert summary["error_rate_percent"] == 5.0
    assert summary["unique_endpoints"] == 2
    assert summary["avg_response_time_ms"] == pytest.approx((90 * 50 + 10 * 3000 + 100 * 200) / 200)
    assert summary["max_response_time_ms"] == 5000.0  # upper bound of the 2.5..5 s bucket


def test_minutes_parameter_is_validated(api, partitions):
    response = api.get("/api/v1/monitoring/metrics/api", {"minutes": "-5"})
    assert response.status_code == 400
    assert "minutes" in response.json()["detail"]


def test_quantile_interpolates_inside_the_bucket():
    buckets = {0.1: 50.0, 0.2: 100.0, float("inf"): 100.0}
    assert quantile(0.5, buckets) == pytest.approx(0.1)
    assert quantile(0.75, buckets) == pytest.approx(0.15)
    assert quantile(0.99, {0.1: 0.0, float("inf"): 10.0}) == 0.1  # rank in +Inf: the last finite bound
    assert quantile(0.5, {0.1: 0.0, float("inf"): 0.0}) is None


def two_workers(start: float) -> tuple[FakeSdk, FakeSdk]:
    """Two processes of one app on one host (gunicorn workers) for 10 minutes, flushing every 10 s.

    Worker a serves 10 requests/min at 20 ms, worker b 1 request/min at 700 ms (3 of them 503);
    b flushes 5 s after a, so their samples interleave.
    """
    a = FakeSdk("web-1", instance="a1b2c3")
    b = FakeSdk("web-1", instance="d4e5f6")
    a.snapshot(start - 10)
    b.snapshot(start - 5)
    for tick in range(60):
        for _ in range((tick + 1) * 100 // 60 - tick * 100 // 60):
            a.observe(0.02)
        if tick % 6 == 5:
            b.observe(0.7, 503 if tick in (5, 29, 59) else 200)
        a.snapshot(start + tick * 10)
        b.snapshot(start + tick * 10 + 5)
    assert (a.count, b.count) == (100, 10)
    return a, b


def test_processes_of_one_app_on_one_host_are_summed_exactly(api, partitions):
    start = time.time() - 15 * 60
    a, b = two_workers(start)
    a.save()
    b.save()
    response = api.get("/api/v1/monitoring/metrics/api", {"minutes": 30})
    assert response.status_code == 200
    (row,) = response.json()["data"]
    assert row["requests"] == 110
    assert row["status_codes"] == {"200": 107, "503": 3}
    assert row["error_count"] == 3
    assert row["avg_response_time_ms"] == pytest.approx((100 * 20 + 10 * 700) / 110, abs=0.001)
    assert row["request_bytes_total"] == 110 * 100
    assert row["response_bytes_total"] == 110 * 1000
    # 100 requests in the 10..25 ms bucket, 10 in 500 ms..1 s, interpolated inside the bucket:
    assert row["p50_response_time_ms"] == pytest.approx(10 + 15 * 55 / 100)
    assert row["p95_response_time_ms"] == pytest.approx(500 + 500 * 4.5 / 10)
    assert row["p99_response_time_ms"] == pytest.approx(500 + 500 * 8.9 / 10)
    end = datetime.now(UTC)
    summary = api_summary(end - timedelta(minutes=30), end)
    assert summary["total_requests"] == 110
    assert summary["error_count"] == 3
    assert summary["unique_endpoints"] == 1


def test_a_worker_restart_is_a_new_instance_counted_from_zero(api, partitions):
    start = time.time() - 15 * 60
    a, b = two_workers(start)
    # b's replacement (new instance id) serves 4 more requests after b's last flush.
    c = FakeSdk("web-1", instance="0a0b0c")
    for _ in range(4):
        c.observe(0.7)
    c.snapshot(start + 600 + 10)
    for sdk in (a, b, c):
        sdk.save()
    (row,) = api.get("/api/v1/monitoring/metrics/api", {"minutes": 30}).json()["data"]
    assert row["requests"] == 114


def test_interleaving_two_processes_in_one_series_would_be_wrong(api, partitions):
    # Guard for the tests above: without the instance label both workers write one series,
    # and every step from one worker's value to the other's looks like a counter reset.
    start = time.time() - 15 * 60
    a, b = two_workers(start)
    a.base.pop("instance")
    for key, points in a.points.items():
        merged = sorted(points + b.points.get(key, []))
        samples(series_id(key[0], a.labels(*key)), merged)
    (row,) = api.get("/api/v1/monitoring/metrics/api", {"minutes": 30}).json()["data"]
    assert row["requests"] > 400
