"""The /models/ page's KV-cache chart: the model servers' ``llm_kv_cache_usage_ratio`` per model.

The page's other charts come from the models API (``GET /api/v1/monitoring/models/series``,
collector_server/inference): the KV cache is a gauge it does not chart. The highest ratio of
a model's servers per step, in percent.
"""

from __future__ import annotations

from datetime import datetime

from collector_server.monitoring import query
from collector_server.ui.charts import PERCENT, Chart, Line, Table
from shared import llm_series as llm

KV_CACHE_CHART = Chart("llm_kv_cache", "KV-cache usage", PERCENT, (Line(llm.KV_CACHE, "{model}", "max"),))
CHARTS_BY_NAME = {KV_CACHE_CHART.name: KV_CACHE_CHART}


def fill(table: Table, name: str, start: datetime, end: datetime, step: int) -> None:
    """Fill ``table`` with the model chart ``name`` (one line per model)."""
    result = query.run_query(llm.KV_CACHE, [], start, end, step, "max", ["model"])
    table.step, table.source = result.step, result.level
    for group in result.series:
        model = group["labels"].get("model", "")
        table.add(model, {"model": model}, [[t, v * 100.0] for t, v in group["points"]])
