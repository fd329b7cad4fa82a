"""metrics/api per status class, the real maximum from the SDK's max gauge, and the window limit."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from collector_server.logs.api_metrics import api_summary
from tests.logs.test_api_metrics import FakeSdk

BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
INF = float("inf")


def series_id(name: str, kind: str, labels: dict[str, str]) -> int:
    key = ",".join(f"{k}={labels[k]}" for k in sorted(labels))
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO monitoring_series (name, kind, labels, labels_key, created_at) "
            "VALUES (%s, %s, %s::jsonb, %s, now()) RETURNING id",
            [name, kind, json.dumps(labels), key],
        )
        return cursor.fetchone()[0]


def write(name: str, kind: str, labels: dict[str, str], points: list[tuple[float, float]]) -> None:
    sid = series_id(name, kind, labels)
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO monitoring_sample (series_id, ts, value) VALUES (%s, to_timestamp(%s), %s)",
            [(sid, ts, value) for ts, value in points],
        )


def status_class(status: int) -> str:
    return f"{status // 100}xx"


class ClassSdk:
    """One SDK process as it exports now: histograms per status class and a max gauge per flush."""

    def __init__(
        self, host: str, route: str = "/api/v1/generate", method: str = "POST", service: str = "llm"
    ):
        self.base = {
            "service": service,
            "instance": f"i-{host}",
            "route": route,
            "method": method,
            "host": host,
        }
        self.status: dict[str, int] = {}
        self.hist: dict[str, dict] = {}
        self.interval_max: dict[str, float] = {}
        self.points: dict[tuple[str, str, tuple], list[tuple[float, float]]] = {}

    def observe(self, seconds: float, status: int = 200) -> None:
        self.status[str(status)] = self.status.get(str(status), 0) + 1
        name = status_class(status)
        hist = self.hist.setdefault(
            name, {"buckets": dict.fromkeys([*BOUNDS, INF], 0), "sum": 0.0, "count": 0}
        )
        for le in hist["buckets"]:
            if seconds <= le:
                hist["buckets"][le] += 1
        hist["sum"] += seconds
        hist["count"] += 1
        self.interval_max[name] = max(self.interval_max.get(name, 0.0), seconds)

    def add(self, name: str, kind: str, extra: dict[str, str], ts: float, value: float) -> None:
        self.points.setdefault((name, kind, tuple(sorted(extra.items()))), []).append((ts, value))

    def flush(self, ts: float) -> None:
        """Cumulative counters at ts, and the max of each class since the previous flush."""
        for code, n in self.status.items():
            self.add("http_requests_total", "counter", {"status": code}, ts, n)
        for name, hist in self.hist.items():
            cls = {"status_class": name}
            for le, n in hist["buckets"].items():
                le_label = "+Inf" if le == INF else str(le)
                self.add("http_request_duration_seconds_bucket", "counter", {**cls, "le": le_label}, ts, n)
            self.add("http_request_duration_seconds_sum", "counter", cls, ts, hist["sum"])
            self.add("http_request_duration_seconds_count", "counter", cls, ts, hist["count"])
        for name, longest in self.interval_max.items():
            self.add("http_request_duration_seconds_max", "gauge", {"status_class": name}, ts, longest)
        self.interval_max = {}

    def save(self) -> None:
        for (name, kind, extra), points in self.points.items():
            write(name, kind, {**self.base, **dict(extra)}, points)


def run(sdk: ClassSdk, start: float, intervals: list[list[tuple[float, int]]]) -> None:
    """A baseline flush with nothing served (the SDK's counters start at zero), then one flush per list."""
    for offset, requests in enumerate(intervals, start=1):
        for seconds, status in requests:
            sdk.observe(seconds, status)
        sdk.flush(start + 10 * offset)


def by_class(row):
    return {c["status_class"]: c for c in row["by_status_class"]}


@pytest.fixture
def two_hosts(partitions):
    """web-1 and web-2 serve one endpoint; their samples are only correct when merged per le.

    Merged: 2xx = 80 requests in (10, 25] ms and 20 in (100, 250] ms (longest 240 ms);
    5xx = 10 in (2.5, 5] s (longest 4 s); 4xx = 4 at 4 ms.
    """
    start = time.time() - 20 * 60
    web1, web2 = ClassSdk("web-1"), ClassSdk("web-2")
    web1.add("http_requests_total", "counter", {"status": "200"}, start, 0)  # a baseline before any request
    run(
        web1,
        start,
        [[(0.02, 200)] * 30 + [(3.0, 503)] * 2, [(0.02, 200)] * 30 + [(0.2, 200)] * 10 + [(3.0, 500)] * 3],
    )
    run(
        web2,
        start + 5,
        [
            [(0.02, 200)] * 20 + [(0.004, 404)] * 4,
            [(0.24, 200)] * 10 + [(4.0, 500)] * 5,
        ],
    )
    web1.save()
    web2.save()


def test_percentiles_per_status_class_are_exact(api, two_hosts):
    response = api.get("/api/v1/monitoring/metrics/api", {"minutes": 30})
    assert response.status_code == 200
    (row,) = response.json()["data"]
    classes = by_class(row)
    assert sorted(classes) == ["2xx", "4xx", "5xx"]
    ok, missing, failed = classes["2xx"], classes["4xx"], classes["5xx"]
    assert (ok["requests"], missing["requests"], failed["requests"]) == (100, 4, 10)
    # 2xx: p50 rank 50 of 80 in (10, 25] ms; p95 rank 95: 15th of 20 in (100, 250] ms;
    # p99 rank 99 interpolates to 242.5 ms, above the longest request: the real maximum caps it.
    assert ok["p50_response_time_ms"] == pytest.approx(10 + 15 * 50 / 80, abs=0.001)
    assert ok["p95_response_time_ms"] == pytest.approx(100 + 150 * 15 / 20, abs=0.001)
    assert ok["p99_response_time_ms"] == pytest.approx(240, abs=0.001)
    assert ok["max_response_time_ms"] == pytest.approx(240, abs=0.001)
    assert ok["avg_response_time_ms"] == pytest.approx((80 * 20 + 10 * 200 + 10 * 240) / 100, abs=0.001)
    # 5xx: 10 requests in (2.5, 5] s, 5 of 3 s and 5 of 4 s.
    assert failed["p50_response_time_ms"] == pytest.approx(2500 + 2500 * 5 / 10, abs=0.001)
    assert failed["p95_response_time_ms"] == pytest.approx(4000, abs=0.001)  # 4875 capped by the max
    assert failed["max_response_time_ms"] == pytest.approx(4000, abs=0.001)
    assert failed["avg_response_time_ms"] == pytest.approx(3500, abs=0.001)
    assert missing["p50_response_time_ms"] == pytest.approx(2.5, abs=0.001)
    assert missing["max_response_time_ms"] == pytest.approx(4, abs=0.001)


def test_the_row_merges_the_classes_and_both_hosts(api, two_hosts):
    (row,) = api.get("/api/v1/monitoring/metrics/api", {"minutes": 30}).json()["data"]
    assert row["requests"] == 114
    assert row["status_codes"] == {"200": 100, "404": 4, "500": 8, "503": 2}
    assert row["error_count"] == 10
    # merged cumulative buckets: 5 ms: 4, 25 ms: 84, 250 ms: 104, 5 s: 114
    assert row["p50_response_time_ms"] == pytest.approx(10 + 15 * (57 - 4) / 80, abs=0.001)
    assert row["p95_response_time_ms"] == pytest.approx(2500 + 2500 * (108.3 - 104) / 10, abs=0.001)
    assert row["p99_response_time_ms"] == pytest.approx(4000, abs=0.001)  # 4715 capped by the max
    assert row["max_response_time_ms"] == pytest.approx(4000, abs=0.001)
    assert row["avg_response_time_ms"] == pytest.approx(
        (80 * 20 + 10 * 200 + 10 * 240 + 4 * 4 + 5 * 3000 + 5 * 4000) / 114, abs=0.001
    )
    assert row["response_time_ms"] == row["avg_response_time_ms"]
    # mixing classes moves the percentiles: the 2xx p95 alone is 212.5 ms, the row's 3575 ms
    assert by_class(row)["2xx"]["p95_response_time_ms"] < row["p95_response_time_ms"] / 10


def test_summary_max_is_the_real_maximum_not_a_bucket_bound(two_hosts):
    end = datetime.now(UTC)
    summary = api_summary(end - timedelta(minutes=30), end)
    assert summary["total_requests"] == 114
    assert summary["max_response_time_ms"] == pytest.approx(4000, abs=0.001)  # the bucket bound is 5000


def test_max_above_the_last_bucket_and_only_inside_the_window(api, partitions):
    now = time.time()
    sdk = ClassSdk("web-1", route="/slow", method="GET")
    run(sdk, now - 3 * 3600, [[(20.0, 200)]])  # long before the window
    run(sdk, now - 10 * 60, [[(12.5, 200)] * 2, [(0.5, 200)] * 8])
    sdk.save()
    (row,) = api.get("/api/v1/monitoring/metrics/api", {"minutes": 30}).json()["data"]
    assert row["requests"] == 10
    assert row["max_response_time_ms"] == pytest.approx(12500, abs=0.001)
    # rank 9.9 of 10 is in +Inf (8 requests below 10 s): interpolated between 10 s and the real maximum
    assert row["p99_response_time_ms"] == pytest.approx(10000 + 2500 * (9.9 - 8) / 2, abs=0.001)
    end = datetime.now(UTC)
    assert api_summary(end - timedelta(minutes=30), end)["max_response_time_ms"] == pytest.approx(12500)
    assert api_summary(end - timedelta(hours=4), end)["max_response_time_ms"] == pytest.approx(20000)


def test_series_without_the_max_gauge_or_status_class_fall_back_to_the_bucket_bound(api, partitions):
    now = time.time()
    old = FakeSdk("web-1", route="/legacy", method="GET")  # an older SDK: no status_class, no max
    old.snapshot(now - 600)
    for _ in range(10):
        old.observe(3.0)
    old.snapshot(now - 60)
    old.save()
    new = ClassSdk("web-2", route="/new", method="GET")
    run(new, now - 600, [[(0.3, 200)] * 10])
    new.save()
    rows = {
        r["endpoint"]: r for r in api.get("/api/v1/monitoring/metrics/api", {"minutes": 30}).json()["data"]
    }
    assert rows["/legacy"]["max_response_time_ms"] == 5000.0
    assert rows["/legacy"]["by_status_class"] == []
    assert rows["/new"]["max_response_time_ms"] == pytest.approx(300)
    end = datetime.now(UTC)
    assert api_summary(end - timedelta(minutes=30), end)["max_response_time_ms"] == 5000.0


def test_windows_longer_than_the_raw_retention_are_refused(api, partitions, settings):
    settings.RAW_RETENTION_DAYS = 2
    response = api.get("/api/v1/monitoring/metrics/api", {"minutes": 2 * 24 * 60 + 1})
    assert response.status_code == 400
    body = response.json()
    assert "minutes" in body["detail"]
    assert "2880" in json.dumps(body) and "RAW_RETENTION_DAYS" in json.dumps(body)
    assert api.get("/api/v1/monitoring/metrics/api", {"minutes": 2 * 24 * 60}).status_code == 200
