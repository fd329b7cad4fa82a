"""Per-endpoint API charts over time: request rate, error percentage and latency percentiles.

They read the SDK's counters (see logs.api_metrics): rates per step bucket, merged over hosts
per (service, route, method); percentiles come from the histogram's bucket rates per step,
interpolated as in ``api_metrics.quantile``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime

from collector_server.logs import api_metrics
from collector_server.monitoring import query
from collector_server.ui.charts import Chart, Line, Table

ENDPOINT = ("service", "route", "method")
LABEL = "{method} {route}"
QUANTILE_CHARTS = {"api_p50": 0.5, "api_p95": 0.95, "api_p99": 0.99}

ENDPOINT_CHARTS: tuple[Chart, ...] = (
    Chart("api_rate", "Requests per second", "req/s", (Line(api_metrics.REQUESTS, LABEL, "rate"),)),
    Chart("api_errors", "Errors", "%", (Line(api_metrics.ERRORS, LABEL, "rate"),)),
    Chart("api_p50", "Latency p50", "ms", (Line(api_metrics.BUCKET, LABEL, "rate"),)),
    Chart("api_p95", "Latency p95", "ms", (Line(api_metrics.BUCKET, LABEL, "rate"),)),
    Chart("api_p99", "Latency p99", "ms", (Line(api_metrics.BUCKET, LABEL, "rate"),)),
)


def _rates(metric: str, by: tuple[str, ...], start: datetime, end: datetime, step: int, table: Table):
    result = query.run_query(metric, [], start, end, step, "rate", list(by))
    table.step, table.source = result.step, result.level
    return result.series


def _endpoint_label(labels: dict[str, str]) -> str:
    return LABEL.format(method=labels.get("method", ""), route=labels.get("route", ""))


def request_rate(table: Table, start: datetime, end: datetime, step: int) -> None:
    for group in _rates(api_metrics.REQUESTS, ENDPOINT, start, end, step, table):
        table.add(_endpoint_label(group["labels"]), group["labels"], group["points"])


def error_percent(table: Table, start: datetime, end: datetime, step: int) -> None:
    """Errors / requests * 100 per bucket; a bucket without requests has no value."""
    errors = {
        tuple(g["labels"].get(k, "") for k in ENDPOINT): dict(map(tuple, g["points"]))
        for g in _rates(api_metrics.ERRORS, ENDPOINT, start, end, step, table)
    }
    for group in _rates(api_metrics.REQUESTS, ENDPOINT, start, end, step, table):
        key = tuple(group["labels"].get(k, "") for k in ENDPOINT)
        failed = errors.get(key, {})
        points = [[t, 100.0 * failed.get(t, 0.0) / v] for t, v in group["points"] if v > 0]
        table.add(_endpoint_label(group["labels"]), group["labels"], points)


def latency(table: Table, q: float, start: datetime, end: datetime, step: int) -> None:
    """The q-quantile in milliseconds per bucket, from the histogram bucket rates merged per le."""
    per_endpoint: dict[tuple[str, ...], dict[int, dict[float, float]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(float))
    )
    labels_of: dict[tuple[str, ...], dict[str, str]] = {}
    for group in _rates(api_metrics.BUCKET, (*ENDPOINT, "le"), start, end, step, table):
        labels = group["labels"]
        try:
            le = float(labels.get("le", ""))
        except ValueError:
            continue
        key = tuple(labels.get(k, "") for k in ENDPOINT)
        labels_of[key] = {k: labels.get(k, "") for k in ENDPOINT}
        for t, v in group["points"]:
            per_endpoint[key][int(t)][le] += v
    for key, buckets_at in per_endpoint.items():
        points = []
        for t in sorted(buckets_at):
            seconds = api_metrics.quantile(q, buckets_at[t])
            if seconds is not None and not math.isinf(seconds):
                points.append([t, seconds * 1000.0])
        table.add(_endpoint_label(labels_of[key]), labels_of[key], points)


def fill(table: Table, name: str, start: datetime, end: datetime, step: int) -> None:
    """Fill `table` with the endpoint chart `name`."""
    if name == "api_rate":
        request_rate(table, start, end, step)
    elif name == "api_errors":
        error_percent(table, start, end, step)
    else:
        latency(table, QUANTILE_CHARTS[name], start, end, step)
