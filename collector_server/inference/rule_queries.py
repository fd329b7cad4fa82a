"""Alert query types of the inference figures (docs/inference.md, "Alert rules").

- ``llm_budget``: ``{"period": "day"|"month"}``: per enabled Budget of that period, the percent
  of its amount spent since the period began (UTC), labelled budget, customer_organization,
  model, period. Cost is the models API's: reported plus price-table arithmetic.
- ``histogram_quantile``: ``{"metric": base name, "quantile": 0.95, "window": 300,
  "group_by": [...], "matchers": [...]}``: Prometheus' histogram_quantile over the bucket
  increases of ``<metric>_bucket`` in the window, per group.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from collector_server.alerts import matchers as m
from collector_server.alerts.query import (
    MAX_WINDOW,
    QueryResult,
    QueryType,
    _group_by,
    _positive_int,
    register,
)
from collector_server.inference import figures
from collector_server.inference.models import Budget


def period_start(period: str, now: datetime) -> datetime:
    """The start (UTC) of the day or month ``now`` is in."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return day.replace(day=1) if period == Budget.MONTH else day


class BudgetQuery(QueryType):
    name = "llm_budget"

    def validate(self, query: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(query, dict):
            raise ValueError("query must be an object")
        period = query.get("period", Budget.DAY)
        if period not in (Budget.DAY, Budget.MONTH):
            raise ValueError(f"period must be day or month, not {period!r}")
        return {"period": period}

    def evaluate(self, query: dict[str, Any], now: datetime, lookback: int = 0) -> QueryResult:
        result = QueryResult()
        start = period_start(query["period"], now)
        for budget in Budget.objects.filter(enabled=True, period=query["period"]).order_by("pk"):
            spent = figures.spent(start, now, budget.model or None, budget.customer_organization or None)
            labels = {
                "budget": str(budget.pk),
                "customer_organization": budget.customer_organization,
                "model": budget.model,
                "period": budget.period,
            }
            result.add(labels, spent / float(budget.amount_usd) * 100.0, now)
        return result


class HistogramQuantileQuery(QueryType):
    name = "histogram_quantile"

    def validate(self, query: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(query, dict):
            raise ValueError("query must be an object")
        metric = query.get("metric")
        if not isinstance(metric, str) or not metric or metric.endswith("_bucket"):
            raise ValueError("metric is required: the histogram's base name (without _bucket)")
        quantile = query.get("quantile", 0.95)
        if isinstance(quantile, bool) or not isinstance(quantile, int | float) or not 0 < quantile < 1:
            raise ValueError("quantile must be a number between 0 and 1 (exclusive)")
        return {
            "metric": metric,
            "quantile": float(quantile),
            "window": _positive_int(query, "window", 300, MAX_WINDOW),
            "group_by": _group_by(query),
            "matchers": m.normalize(query.get("matchers")),
        }

    def evaluate(self, query: dict[str, Any], now: datetime, lookback: int = 0) -> QueryResult:
        start = now - timedelta(seconds=query["window"])
        series = [
            s
            for s in figures.select((query["metric"] + "_bucket",))
            if m.matches(query["matchers"], s.labels)
        ]
        level, width = figures.totals_level(start, now)
        totals, _ = figures.increases(series, start, now, level, width, set())
        groups: dict[tuple[str, ...], dict[float, float]] = defaultdict(lambda: defaultdict(float))
        for s in series:
            le = figures.le_of(s.labels)
            if le is None or s.id not in totals:
                continue
            groups[tuple(s.labels.get(k, "") for k in query["group_by"])][le] += totals[s.id]
        result = QueryResult()
        for key, hist in groups.items():
            labels = dict(zip(query["group_by"], key, strict=True))
            result.add(labels, figures.histogram_quantile(query["quantile"], hist), now)
        if not groups and not query["group_by"]:
            result.add({}, None)
        return result


register(BudgetQuery())
register(HistogramQuantileQuery())
