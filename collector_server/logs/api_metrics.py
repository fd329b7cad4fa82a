"""Per-endpoint API metrics from the SDK's cumulative counters and histograms.

Every series is a counter stored as cumulative samples (monitoring_sample). Its
increase over a window is counter-reset aware: consecutive samples are compared,
and a decrease means the process restarted, so the new value is the increase. The
sample just before the window is the baseline; a series with no sample before the
window started inside it, from zero.

Percentiles merge histogram bucket increases over every host and the whole window
(per le), then interpolate inside the bucket holding the rank, as Prometheus'
histogram_quantile does; they are never averages of per-host percentiles.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection

REQUESTS = "http_requests_total"
ERRORS = "http_request_errors_total"
BUCKET = "http_request_duration_seconds_bucket"
DURATION_SUM = "http_request_duration_seconds_sum"
DURATION_COUNT = "http_request_duration_seconds_count"
REQUEST_BYTES = "http_request_size_bytes_sum"
RESPONSE_BYTES = "http_response_size_bytes_sum"
NAMES = [REQUESTS, ERRORS, BUCKET, DURATION_SUM, DURATION_COUNT, REQUEST_BYTES, RESPONSE_BYTES]
QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}

INCREASE_SQL = """
WITH ids AS (
    SELECT id FROM monitoring_series WHERE name = ANY(%(names)s)
),
base AS (
    SELECT ids.id AS series_id, b.ts, b.value FROM ids
    CROSS JOIN LATERAL (
        SELECT ts, value FROM monitoring_sample s
        WHERE s.series_id = ids.id AND s.ts <= %(start)s ORDER BY s.ts DESC LIMIT 1
    ) b
),
points AS (
    SELECT series_id, ts, value FROM base
    UNION ALL
    SELECT s.series_id, s.ts, s.value FROM monitoring_sample s JOIN ids ON ids.id = s.series_id
    WHERE s.ts > %(start)s AND s.ts <= %(end)s
),
steps AS (
    SELECT series_id, ts, value, lag(value) OVER (PARTITION BY series_id ORDER BY ts) AS prev FROM points
)
SELECT ser.name, ser.labels, sum(
    CASE WHEN prev IS NULL THEN CASE WHEN ts > %(start)s THEN value ELSE 0 END
         WHEN value >= prev THEN value - prev
         ELSE value END) AS increase
FROM steps JOIN monitoring_series ser ON ser.id = steps.series_id
GROUP BY ser.id, ser.name, ser.labels
"""

EndpointKey = tuple[str, str, str]  # service, route, method


@dataclass
class Endpoint:
    """Merged counters of one (service, route, method) over every host."""

    service: str
    route: str
    method: str
    statuses: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    errors: float = 0.0
    has_error_series: bool = False
    buckets: dict[float, float] = field(default_factory=lambda: defaultdict(float))
    duration_sum: float = 0.0
    duration_count: float = 0.0
    request_bytes: float = 0.0
    response_bytes: float = 0.0

    @property
    def requests(self) -> float:
        return sum(self.statuses.values()) or self.duration_count

    @property
    def error_count(self) -> float:
        if self.has_error_series:
            return self.errors
        return sum(n for code, n in self.statuses.items() if code.startswith("5"))


def increases(start: datetime, end: datetime) -> list[tuple[str, dict[str, str], float]]:
    """Return (name, labels, increase) of every API metric series over (start, end]."""
    with connection.cursor() as cursor:
        cursor.execute(INCREASE_SQL, {"names": NAMES, "start": start, "end": end})
        rows = cursor.fetchall()
    out = []
    for name, labels, increase in rows:
        if isinstance(labels, str):
            labels = json.loads(labels)
        out.append((name, labels, float(increase or 0.0)))
    return out


def endpoints(start: datetime, end: datetime) -> list[Endpoint]:
    """Merge the series of every host into one Endpoint per (service, route, method)."""
    merged: dict[EndpointKey, Endpoint] = {}
    for name, labels, increase in increases(start, end):
        key = (labels.get("service", ""), labels.get("route", ""), labels.get("method", ""))
        ep = merged.get(key) or merged.setdefault(key, Endpoint(*key))
        if name == REQUESTS:
            ep.statuses[labels.get("status", "")] += increase
        elif name == ERRORS:
            ep.errors += increase
            ep.has_error_series = True
        elif name == BUCKET:
            le = _le(labels.get("le"))
            if le is not None:
                ep.buckets[le] += increase
        elif name == DURATION_SUM:
            ep.duration_sum += increase
        elif name == DURATION_COUNT:
            ep.duration_count += increase
        elif name == REQUEST_BYTES:
            ep.request_bytes += increase
        elif name == RESPONSE_BYTES:
            ep.response_bytes += increase
    return [ep for ep in merged.values() if ep.requests > 0]


def _le(raw: str | None) -> float | None:
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


def cumulative(buckets: dict[float, float]) -> list[tuple[float, float]]:
    """Return (le, count) sorted by le, made non-decreasing (resets can leave small dents)."""
    out = []
    running = 0.0
    for le in sorted(buckets):
        running = max(running, buckets[le])
        out.append((le, running))
    return out


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Estimate the q-quantile (seconds) from merged cumulative bucket counts.

    Linear interpolation inside the bucket that holds the rank; a rank in the +Inf
    bucket returns the highest finite bound (the true value is at least that).
    """
    points = cumulative(buckets)
    if not points or points[-1][1] <= 0:
        return None
    total = points[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for le, count in points:
        if count >= rank:
            if math.isinf(le):
                return lower_bound
            if count == lower_count:
                return le
            return lower_bound + (le - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = le, count
    return lower_bound


def highest_bucket(buckets: dict[float, float]) -> float | None:
    """Upper bound (seconds) of the highest bucket with observations; +Inf reports the last finite bound."""
    previous_count = 0.0
    highest = None
    finite = 0.0
    for le, count in cumulative(buckets):
        if count > previous_count:
            highest = finite if math.isinf(le) else le
        if not math.isinf(le):
            finite = le
        previous_count = count
    return highest


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def endpoint_rows(start: datetime, end: datetime) -> list[dict[str, Any]]:
    """One row per endpoint, busiest first (the body of GET /api/v1/monitoring/metrics/api)."""
    rows = []
    for ep in endpoints(start, end):
        requests = ep.requests
        avg = ep.duration_sum / ep.duration_count if ep.duration_count else None
        statuses = {code: round(n) for code, n in sorted(ep.statuses.items()) if n > 0}
        main_status = max(statuses, key=lambda code: statuses[code]) if statuses else None
        row = {
            "endpoint": ep.route,
            "method": ep.method,
            "service": ep.service,
            "status_code": int(main_status) if main_status and main_status.isdigit() else main_status,
            "status_codes": statuses,
            "requests": round(requests),
            "error_count": round(ep.error_count),
            "error_rate_percent": round(100.0 * ep.error_count / requests, 3) if requests else 0.0,
            "response_time_ms": _ms(avg),
            "avg_response_time_ms": _ms(avg),
            **{f"{name}_response_time_ms": _ms(quantile(q, ep.buckets)) for name, q in QUANTILES.items()},
            "request_size_bytes": round(ep.request_bytes / requests, 1) if requests else None,
            "response_size_bytes": round(ep.response_bytes / requests, 1) if requests else None,
            "request_bytes_total": round(ep.request_bytes),
            "response_bytes_total": round(ep.response_bytes),
        }
        rows.append(row)
    rows.sort(key=lambda r: (-r["requests"], r["endpoint"], r["method"]))
    return rows


def api_summary(start: datetime, end: datetime) -> dict[str, Any]:
    """Totals over every endpoint for the metrics summary endpoint.

    max_response_time_ms is approximate: the upper bound of the highest histogram
    bucket that received a request in the window (requests above the last finite
    bound report that bound).
    """
    eps = endpoints(start, end)
    total = sum(ep.requests for ep in eps)
    duration_sum = sum(ep.duration_sum for ep in eps)
    duration_count = sum(ep.duration_count for ep in eps)
    errors = sum(ep.error_count for ep in eps)
    highs = [h for h in (highest_bucket(ep.buckets) for ep in eps) if h is not None]
    return {
        "total_requests": round(total),
        "avg_response_time_ms": _ms(duration_sum / duration_count) if duration_count else 0.0,
        "max_response_time_ms": _ms(max(highs)) if highs else 0.0,
        "error_count": round(errors),
        "error_rate_percent": round(100.0 * errors / total, 3) if total else 0.0,
        "unique_endpoints": len(eps),
    }
