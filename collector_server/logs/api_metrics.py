"""Per-endpoint API metrics from the SDK's cumulative counters and histograms.

Every series is a counter stored as cumulative samples (monitoring_sample). Its
increase over a window is counter-reset aware: consecutive samples are compared,
and a decrease means the process restarted, so the new value is the increase. The
sample just before the window is the baseline; a series with no sample before the
window started inside it, from zero.

Percentiles merge histogram bucket increases over every host and the whole window
(per le), then interpolate inside the bucket holding the rank, as Prometheus'
histogram_quantile does; they are never averages of per-host percentiles. The SDK
labels the histogram (and its _sum/_count) with status_class (2xx, 5xx, ...): a row's
overall figures merge the classes' buckets per le, and ``by_status_class`` gives each
class's own. The maximum is the largest http_request_duration_seconds_max gauge sample
in the window (the SDK's longest request per flush interval); series without it (older
SDKs) fall back to the upper bound of the highest histogram bucket used.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from collector_server.orgs import scope
from collector_server.replica import read_connection as connection  # the replica on API reads

REQUESTS = "http_requests_total"
ERRORS = "http_request_errors_total"
BUCKET = "http_request_duration_seconds_bucket"
DURATION_SUM = "http_request_duration_seconds_sum"
DURATION_COUNT = "http_request_duration_seconds_count"
REQUEST_BYTES = "http_request_size_bytes_sum"
RESPONSE_BYTES = "http_response_size_bytes_sum"
DURATION_MAX = "http_request_duration_seconds_max"
NAMES = [REQUESTS, ERRORS, BUCKET, DURATION_SUM, DURATION_COUNT, REQUEST_BYTES, RESPONSE_BYTES]
NO_CLASS = ""  # histogram series from SDKs before the status_class label
QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}

INCREASE_SQL = """
WITH ids AS (
    SELECT id FROM monitoring_series WHERE name = ANY(%(names)s) AND {org}
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

MAX_SQL = """
SELECT ser.labels, max(s.value) FROM monitoring_series ser
JOIN monitoring_sample s ON s.series_id = ser.id
WHERE ser.name = %(name)s AND {org} AND s.ts > %(start)s AND s.ts <= %(end)s
GROUP BY ser.id, ser.labels
"""

EndpointKey = tuple[str, str, str]  # service, route, method


@dataclass
class ClassStats:
    """Merged latency histogram of one status class of an endpoint."""

    buckets: dict[float, float] = field(default_factory=lambda: defaultdict(float))
    duration_sum: float = 0.0
    duration_count: float = 0.0
    max_seconds: float | None = None  # from the max gauge; None when no sample of it

    def top(self) -> float | None:
        """The real maximum if known, else the bound of the highest bucket used."""
        return self.max_seconds if self.max_seconds is not None else highest_bucket(self.buckets)


@dataclass
class Endpoint:
    """Merged counters of one (service, route, method) over every host."""

    service: str
    route: str
    method: str
    statuses: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    errors: float = 0.0
    has_error_series: bool = False
    classes: dict[str, ClassStats] = field(default_factory=dict)
    request_bytes: float = 0.0
    response_bytes: float = 0.0

    def cls(self, name: str) -> ClassStats:
        stats = self.classes.get(name)
        if stats is None:
            stats = self.classes[name] = ClassStats()
        return stats

    @property
    def buckets(self) -> dict[float, float]:
        """Every class's bucket increases summed per le."""
        merged: dict[float, float] = defaultdict(float)
        for stats in self.classes.values():
            for le, n in stats.buckets.items():
                merged[le] += n
        return merged

    @property
    def duration_sum(self) -> float:
        return sum(c.duration_sum for c in self.classes.values())

    @property
    def duration_count(self) -> float:
        return sum(c.duration_count for c in self.classes.values())

    @property
    def max_seconds(self) -> float | None:
        """The largest request of any class (real maximum, or a bucket bound where none is known)."""
        tops = [t for t in (c.top() for c in self.classes.values() if c.duration_count > 0) if t is not None]
        return max(tops) if tops else None

    @property
    def requests(self) -> float:
        return sum(self.statuses.values()) or self.duration_count

    @property
    def error_count(self) -> float:
        if self.has_error_series:
            return self.errors
        return sum(n for code, n in self.statuses.items() if code.startswith("5"))

    def class_requests(self, name: str) -> float:
        """Requests of one status class from http_requests_total, else the histogram's count."""
        counted = sum(n for code, n in self.statuses.items() if _class_of(code) == name)
        return counted or self.classes[name].duration_count


def _class_of(code: str) -> str:
    return f"{code[0]}xx" if len(code) == 3 and code.isdigit() and code[0] in "12345" else "other"


def increases(start: datetime, end: datetime) -> list[tuple[str, dict[str, str], float]]:
    """Return (name, labels, increase) of every API metric series over (start, end]."""
    with connection.cursor() as cursor:
        org, org_params = scope.sql_filter_named("organization_id")
        cursor.execute(
            INCREASE_SQL.replace("{org}", org), {"names": NAMES, "start": start, "end": end, **org_params}
        )
        rows = cursor.fetchall()
    out = []
    for name, labels, increase in rows:
        if isinstance(labels, str):
            labels = json.loads(labels)
        out.append((name, labels, float(increase or 0.0)))
    return out


def maxima(start: datetime, end: datetime) -> list[tuple[dict[str, str], float]]:
    """Return (labels, largest sample) of every duration max gauge series over (start, end]."""
    with connection.cursor() as cursor:
        org, org_params = scope.sql_filter_named("ser.organization_id")
        cursor.execute(
            MAX_SQL.replace("{org}", org), {"name": DURATION_MAX, "start": start, "end": end, **org_params}
        )
        rows = cursor.fetchall()
    return [
        (json.loads(labels) if isinstance(labels, str) else labels, float(value)) for labels, value in rows
    ]


def endpoints(start: datetime, end: datetime) -> list[Endpoint]:
    """Merge the series of every host into one Endpoint per (service, route, method)."""
    merged: dict[EndpointKey, Endpoint] = {}

    def endpoint(labels: dict[str, str]) -> Endpoint:
        key = (labels.get("service", ""), labels.get("route", ""), labels.get("method", ""))
        return merged.get(key) or merged.setdefault(key, Endpoint(*key))

    for name, labels, increase in increases(start, end):
        ep = endpoint(labels)
        if name == REQUESTS:
            ep.statuses[labels.get("status", "")] += increase
        elif name == ERRORS:
            ep.errors += increase
            ep.has_error_series = True
        elif name == BUCKET:
            le = _le(labels.get("le"))
            if le is not None:
                ep.cls(labels.get("status_class", NO_CLASS)).buckets[le] += increase
        elif name == DURATION_SUM:
            ep.cls(labels.get("status_class", NO_CLASS)).duration_sum += increase
        elif name == DURATION_COUNT:
            ep.cls(labels.get("status_class", NO_CLASS)).duration_count += increase
        elif name == REQUEST_BYTES:
            ep.request_bytes += increase
        elif name == RESPONSE_BYTES:
            ep.response_bytes += increase
    for labels, value in maxima(start, end):
        key = (labels.get("service", ""), labels.get("route", ""), labels.get("method", ""))
        ep = merged.get(key)
        if ep is None:
            continue
        stats = ep.cls(labels.get("status_class", NO_CLASS))
        stats.max_seconds = value if stats.max_seconds is None else max(stats.max_seconds, value)
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


def quantile(q: float, buckets: dict[float, float], top: float | None = None) -> float | None:
    """Estimate the q-quantile (seconds) from merged cumulative bucket counts.

    Linear interpolation inside the bucket that holds the rank; a rank in the +Inf
    bucket returns the highest finite bound (the true value is at least that). With
    ``top``, the real maximum, the +Inf bucket interpolates up to it and no estimate
    exceeds it.
    """
    points = cumulative(buckets)
    if not points or points[-1][1] <= 0:
        return None
    total = points[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    estimate = lower_bound
    for le, count in points:
        if count >= rank:
            if math.isinf(le):
                if top is None or top <= lower_bound or count == lower_count:
                    return lower_bound
                le = top
            if count == lower_count:
                estimate = le
            else:
                estimate = lower_bound + (le - lower_bound) * (rank - lower_count) / (count - lower_count)
            break
        lower_bound, lower_count = le, count
    else:
        estimate = lower_bound
    return estimate if top is None else min(estimate, top)


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


def _figures(
    buckets: dict[float, float], duration_sum: float, duration_count: float, top: float | None
) -> dict[str, float | None]:
    """avg, p50, p95, p99 and max response time (ms) of one merged histogram."""
    avg = duration_sum / duration_count if duration_count else None
    return {
        "avg_response_time_ms": _ms(avg),
        **{f"{name}_response_time_ms": _ms(quantile(q, buckets, top)) for name, q in QUANTILES.items()},
        "max_response_time_ms": _ms(top),
    }


def endpoint_rows(start: datetime, end: datetime) -> list[dict[str, Any]]:
    """One row per endpoint, busiest first (the body of GET /api/v1/monitoring/metrics/api).

    The row's figures cover every status class (their histograms merged per le);
    ``by_status_class`` has the same figures per class (2xx, 3xx, 4xx, 5xx, ...).
    """
    rows = []
    for ep in endpoints(start, end):
        requests = ep.requests
        statuses = {code: round(n) for code, n in sorted(ep.statuses.items()) if n > 0}
        main_status = max(statuses, key=lambda code: statuses[code]) if statuses else None
        overall = _figures(ep.buckets, ep.duration_sum, ep.duration_count, ep.max_seconds)
        by_class = []
        for name, stats in sorted(ep.classes.items()):
            if name == NO_CLASS or stats.duration_count <= 0:
                continue
            by_class.append(
                {
                    "status_class": name,
                    "requests": round(ep.class_requests(name)),
                    **_figures(stats.buckets, stats.duration_sum, stats.duration_count, stats.top()),
                }
            )
        row = {
            "endpoint": ep.route,
            "method": ep.method,
            "service": ep.service,
            "status_code": int(main_status) if main_status and main_status.isdigit() else main_status,
            "status_codes": statuses,
            "requests": round(requests),
            "error_count": round(ep.error_count),
            "error_rate_percent": round(100.0 * ep.error_count / requests, 3) if requests else 0.0,
            "response_time_ms": overall["avg_response_time_ms"],
            **overall,
            "request_size_bytes": round(ep.request_bytes / requests, 1) if requests else None,
            "response_size_bytes": round(ep.response_bytes / requests, 1) if requests else None,
            "request_bytes_total": round(ep.request_bytes),
            "response_bytes_total": round(ep.response_bytes),
            "by_status_class": by_class,
        }
        rows.append(row)
    rows.sort(key=lambda r: (-r["requests"], r["endpoint"], r["method"]))
    return rows


def api_summary(start: datetime, end: datetime) -> dict[str, Any]:
    """Totals over every endpoint for the metrics summary endpoint.

    max_response_time_ms is the largest http_request_duration_seconds_max sample in the
    window; for histograms without that gauge (older SDKs) it falls back to the upper bound
    of the highest bucket that received a request (above the last finite bound, that bound).
    """
    eps = endpoints(start, end)
    total = sum(ep.requests for ep in eps)
    duration_sum = sum(ep.duration_sum for ep in eps)
    duration_count = sum(ep.duration_count for ep in eps)
    errors = sum(ep.error_count for ep in eps)
    highs = [h for h in (ep.max_seconds for ep in eps) if h is not None]
    return {
        "total_requests": round(total),
        "avg_response_time_ms": _ms(duration_sum / duration_count) if duration_count else 0.0,
        "max_response_time_ms": _ms(max(highs)) if highs else 0.0,
        "error_count": round(errors),
        "error_rate_percent": round(100.0 * errors / total, 3) if total else 0.0,
        "unique_endpoints": len(eps),
    }
