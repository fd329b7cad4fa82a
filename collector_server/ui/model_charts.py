"""The /models/ page's charts: one figure each, one line per model, over the LLM contract series.

Rates per step bucket from the counters (every source summed: SDK apps, OpenTelemetry apps,
scraped model servers); percentiles from the histogram's bucket rates per step, merged per
``le`` and interpolated as ``api_metrics.quantile`` does (Prometheus' histogram_quantile).
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime

from collector_server.logs import api_metrics
from collector_server.monitoring import query
from collector_server.ui.charts import PERCENT, Chart, Line, Table
from shared import llm_series as llm

BY_MODEL = ("model",)
LABEL = "{model}"

MODEL_CHARTS: tuple[Chart, ...] = (
    Chart("llm_requests", "Requests per second", "req/s", (Line(llm.REQUESTS, LABEL, "rate"),), group="llm"),
    Chart("llm_errors", "Errors", PERCENT, (Line(llm.REQUESTS, LABEL, "rate"),), group="llm"),
    Chart(
        "llm_tokens",
        "Tokens per second (in / out)",
        "tok/s",
        (Line(llm.INPUT_TOKENS, "{model} in", "rate"), Line(llm.OUTPUT_TOKENS, "{model} out", "rate")),
        group="llm",
    ),
    Chart(
        "llm_latency_p95", "Latency p95", "s", (Line(f"{llm.DURATION}_bucket", LABEL, "rate"),), group="llm"
    ),
    Chart(
        "llm_ttft_p95",
        "Time to first token p95",
        "s",
        (Line(f"{llm.TTFT}_bucket", LABEL, "rate"),),
        group="llm",
    ),
    Chart("llm_cost", "Cost per hour", "USD/h", (Line(llm.COST, LABEL, "rate"),), group="llm"),
    Chart("llm_kv_cache", "KV-cache usage", PERCENT, (Line(llm.KV_CACHE, LABEL, "max"),), group="llm-server"),
)
CHARTS_BY_NAME = {chart.name: chart for chart in MODEL_CHARTS}
QUANTILES = {"llm_latency_p95": (llm.DURATION, 0.95), "llm_ttft_p95": (llm.TTFT, 0.95)}


def _groups(metric: str, agg: str, by: tuple[str, ...], matchers: list[str], start, end, step, table: Table):
    parsed = [query.Matcher.parse(text) for text in matchers]
    result = query.run_query(metric, parsed, start, end, step, agg, list(by))
    table.step, table.source = result.step, result.level
    return result.series


def _add(table: Table, template: str, group: dict) -> None:
    labels = group["labels"]
    table.add(
        template.format(model=labels.get("model", "")), {"model": labels.get("model", "")}, group["points"]
    )


def fill(table: Table, name: str, start: datetime, end: datetime, step: int) -> None:
    """Fill ``table`` with the model chart ``name``."""
    if name in QUANTILES:
        _quantile(table, *QUANTILES[name], start, end, step)
    elif name == "llm_errors":
        _error_percent(table, start, end, step)
    elif name == "llm_cost":
        for group in _groups(llm.COST, "rate", BY_MODEL, [], start, end, step, table):
            group["points"] = [[t, v * 3600.0] for t, v in group["points"]]
            _add(table, LABEL, group)
    elif name == "llm_kv_cache":
        for group in _groups(llm.KV_CACHE, "max", BY_MODEL, [], start, end, step, table):
            group["points"] = [[t, v * 100.0] for t, v in group["points"]]
            _add(table, LABEL, group)
    else:
        for line in CHARTS_BY_NAME[name].lines:
            for group in _groups(line.metric, "rate", BY_MODEL, [], start, end, step, table):
                _add(table, line.label, group)


def _error_percent(table: Table, start: datetime, end: datetime, step: int) -> None:
    """Errors / requests * 100 per bucket; a bucket without requests has no value."""
    failed = {
        g["labels"].get("model", ""): dict(map(tuple, g["points"]))
        for g in _groups(llm.REQUESTS, "rate", BY_MODEL, ['status="error"'], start, end, step, table)
    }
    for group in _groups(llm.REQUESTS, "rate", BY_MODEL, [], start, end, step, table):
        errors = failed.get(group["labels"].get("model", ""), {})
        group["points"] = [[t, 100.0 * errors.get(t, 0.0) / v] for t, v in group["points"] if v > 0]
        _add(table, LABEL, group)


def _quantile(table: Table, family: str, q: float, start: datetime, end: datetime, step: int) -> None:
    per_model: dict[str, dict[int, dict[float, float]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(float))
    )
    for group in _groups(f"{family}_bucket", "rate", ("model", "le"), [], start, end, step, table):
        try:
            le = float(group["labels"].get("le", ""))
        except ValueError:
            continue
        for t, v in group["points"]:
            per_model[group["labels"].get("model", "")][int(t)][le] += v
    for model, buckets_at in sorted(per_model.items()):
        points = []
        for t in sorted(buckets_at):
            seconds = api_metrics.quantile(q, buckets_at[t])
            if seconds is not None and not math.isinf(seconds):
                points.append([t, seconds])
        table.add(model, {"model": model}, points)
