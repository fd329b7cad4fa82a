"""Prometheus' JSON shapes for query results and values."""

from __future__ import annotations

import math
from decimal import Decimal

from collector_server.prometheus_api.promql.values import RangeSamples, Scalar, Steps, String, Value


def number(value: float) -> str:
    """Format a sample value as Prometheus does (Go's 'f', -1: shortest, no exponent)."""
    text = repr(value)
    if text[-2:] == ".0":
        return text[:-2]
    if "e" in text or "n" in text:  # exponent, nan, inf
        return _unusual(value, text)
    return text


def _unusual(value: float, text: str) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = format(Decimal(text), "f")
    return text[:-2] if text.endswith(".0") else text


def seconds(ms: int) -> float | int:
    return ms // 1000 if ms % 1000 == 0 else ms / 1000


def _sort_key(labels: dict[str, str]) -> tuple:
    return tuple(sorted(labels.items()))


def instant(value: Value, steps: Steps, order: str | None) -> dict:
    """The data of /api/v1/query."""
    at = seconds(steps.start_ms)
    if isinstance(value, Scalar):
        return {"resultType": "scalar", "result": [at, number(value.values[0])]}
    if isinstance(value, String):
        return {"resultType": "string", "result": [at, value.value]}
    if isinstance(value, RangeSamples):
        result = [
            {"metric": labels, "values": [[seconds(t), number(v)] for t, v in samples]}
            for labels, samples in sorted(value.series, key=lambda item: _sort_key(item[0]))
        ]
        return {"resultType": "matrix", "result": result}
    present = [s for s in value.series if s.values[0] is not None]
    if order is None:
        present.sort(key=lambda s: _sort_key(s.labels))
    else:
        present.sort(key=lambda s: (math.isnan(s.values[0]), s.values[0]), reverse=False)
        if order == "desc":
            present.sort(key=lambda s: (not math.isnan(s.values[0]), s.values[0]), reverse=True)
    return {
        "resultType": "vector",
        "result": [{"metric": s.labels, "value": [at, number(s.values[0])]} for s in present],
    }


def matrix(value: Value, steps: Steps) -> dict:
    """The data of /api/v1/query_range."""
    times = [seconds(t) for t in steps.times_ms()]
    if isinstance(value, Scalar):
        return {
            "resultType": "matrix",
            "result": [
                {"metric": {}, "values": [[t, number(v)] for t, v in zip(times, value.values, strict=True)]}
            ],
        }
    result = []
    for s in sorted(value.series, key=lambda s: _sort_key(s.labels)):
        points = [[t, number(v)] for t, v in zip(times, s.values, strict=True) if v is not None]
        if points:
            result.append({"metric": s.labels, "values": points})
    return {"resultType": "matrix", "result": result}
