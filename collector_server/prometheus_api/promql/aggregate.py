"""Aggregation operators (sum, avg, min, max, count, group, stddev, stdvar, topk, bottomk, quantile)."""

from __future__ import annotations

import math
import statistics

from collector_server.prometheus_api.promql.functions import quantile
from collector_server.prometheus_api.promql.values import NAME, Labels, PromQLError, Scalar, Series, Vector

SIMPLE = {
    "sum": math.fsum,
    "avg": lambda vs: math.fsum(vs) / len(vs),
    "min": lambda vs: _extreme(vs, min),
    "max": lambda vs: _extreme(vs, max),
    "count": lambda vs: float(len(vs)),
    "group": lambda vs: 1.0,
    "stddev": lambda vs: statistics.pstdev(vs) if all(map(math.isfinite, vs)) else math.nan,
    "stdvar": lambda vs: statistics.pvariance(vs) if all(map(math.isfinite, vs)) else math.nan,
}
SUPPORTED = (*SIMPLE, "topk", "bottomk", "quantile")


def _extreme(values: list[float], pick) -> float:
    numbers = [v for v in values if not math.isnan(v)]
    return pick(numbers) if numbers else math.nan


def group_labels(labels: Labels, names: list[str], by: bool) -> Labels:
    if by:
        return {k: labels[k] for k in names if labels.get(k)}
    drop = {*names, NAME}
    return {k: v for k, v in labels.items() if k not in drop}


def aggregate(
    op: str, vector: Vector, names: list[str], by: bool, param: Scalar | None, count: int
) -> Vector:
    """Aggregate `vector` per group of labels (by or without `names`) at every step."""
    if op not in SUPPORTED:
        raise PromQLError(f'aggregation "{op}" is not supported by fleetwatch')
    groups: dict[tuple, tuple[Labels, list[Series]]] = {}
    for series in vector.series:
        labels = group_labels(series.labels, names, by)
        key = tuple(sorted(labels.items()))
        groups.setdefault(key, (labels, []))[1].append(series)
    if op in ("topk", "bottomk"):
        return _top(op, groups, param, count)
    result = []
    for labels, members in groups.values():
        values: list[float | None] = []
        for k in range(count):
            present = [s.values[k] for s in members if s.values[k] is not None]
            if not present:
                values.append(None)
            elif op == "quantile":
                values.append(quantile(param.values[k], present))
            else:
                values.append(SIMPLE[op](present))
        result.append(Series(labels, values))
    return Vector(result)


def _top(op: str, groups: dict, param: Scalar | None, count: int) -> Vector:
    """topk/bottomk keep the chosen series whole, with their own labels."""
    out: dict[int, Series] = {}
    for _, members in groups.values():
        for k in range(count):
            n = int(param.values[k]) if param else 1
            present = [s for s in members if s.values[k] is not None]

            def rank(s: Series, k: int = k) -> tuple[bool, float]:
                v = s.values[k]
                return (math.isnan(v), -v if op == "topk" else v)

            for s in sorted(present, key=rank)[: max(n, 0)]:
                kept = out.get(id(s))
                if kept is None:
                    kept = out[id(s)] = Series(s.labels, [None] * count)
                kept.values[k] = s.values[k]
    return Vector(list(out.values()))
