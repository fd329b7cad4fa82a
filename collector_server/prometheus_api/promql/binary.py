"""Binary operators: scalar/scalar, vector/scalar, and vector/vector with on/ignoring, group_left/right."""

from __future__ import annotations

import math
from collections.abc import Callable

from collector_server.prometheus_api.promql.values import (
    NAME,
    Labels,
    PromQLError,
    Scalar,
    Series,
    Vector,
    signature,
    without_name,
)

ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: _divide(a, b),
    "%": lambda a, b: math.fmod(a, b) if b != 0 and math.isfinite(a) else math.nan,
    "^": lambda a, b: _power(a, b),
    "atan2": math.atan2,
}
COMPARISON: dict[str, Callable[[float, float], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
}
SET_OPERATORS = ("and", "or", "unless")


def _divide(a: float, b: float) -> float:
    if b == 0:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def _power(a: float, b: float) -> float:
    try:
        return math.pow(a, b)
    except (OverflowError, ValueError):
        return math.inf if a > 0 or b == int(b) else math.nan


def element(op: str, left: float, right: float, return_bool: bool) -> tuple[float, bool]:
    """Apply `op` to two values: (result, keep). Comparisons keep the left value when true."""
    if op in ARITHMETIC:
        return ARITHMETIC[op](left, right), True
    if op not in COMPARISON:
        raise PromQLError(f"operator {op!r} is not supported by fleetwatch")
    true = COMPARISON[op](left, right)
    if return_bool:
        return (1.0 if true else 0.0), True
    return left, true


def scalars(op: str, left: Scalar, right: Scalar, return_bool: bool) -> Scalar:
    out = []
    for a, b in zip(left.values, right.values, strict=True):
        value, _ = element(op, a, b, True if op in COMPARISON else return_bool)
        out.append(value)
    return Scalar(out)


def vector_scalar(op: str, vector: Vector, scalar: Scalar, scalar_left: bool, return_bool: bool) -> Vector:
    """Apply `op` between every series of a vector and a scalar; comparisons filter."""
    drop = op in ARITHMETIC or return_bool
    result = []
    for series in vector.series:
        values: list[float | None] = []
        for v, s in zip(series.values, scalar.values, strict=True):
            if v is None:
                values.append(None)
                continue
            left, right = (s, v) if scalar_left else (v, s)
            value, keep = element(op, left, right, return_bool)
            if op in COMPARISON and not return_bool:
                value = v  # the vector's own value, whichever side it is on
            values.append(value if keep else None)
        labels = without_name(series.labels) if drop else series.labels
        result.append(Series(labels, values))
    return Vector(result)


class Matching:
    """The on/ignoring and group_left/right modifiers of a vector/vector operation."""

    def __init__(self, modifier: object | None) -> None:
        self.card = "OneToOne"
        self.on = False
        self.names: list[str] = []
        self.include: list[str] = []
        self.return_bool = False
        if modifier is None:
            return
        self.card = str(modifier.card).rsplit(".", 1)[-1]
        self.return_bool = bool(modifier.return_bool)
        matching = modifier.matching
        if matching is not None:
            self.on = str(matching.type).endswith("Include")
            self.names = list(matching.labels)
        self.include = list(modifier.group_labels or [])

    def sig(self, labels: Labels) -> tuple:
        return signature(labels, self.names, self.on)


def vectors(op: str, lhs: Vector, rhs: Vector, matching: Matching, count: int) -> Vector:
    if op in SET_OPERATORS:
        return _set_operation(op, lhs, rhs, matching, count)
    out: dict[tuple, Series] = {}
    many, one = (rhs, lhs) if matching.card == "OneToMany" else (lhs, rhs)
    for k in range(count):
        ones: dict[tuple, Series] = {}
        for series in one.series:
            if series.values[k] is None:
                continue
            key = matching.sig(series.labels)
            if key in ones:
                side = "left" if matching.card == "OneToMany" else "right"
                raise PromQLError(
                    f"found duplicate series for the match group {dict(key)} on the {side} hand-side of the "
                    "operation; many-to-many matching not allowed: matching labels must be unique on one side",
                    "execution",
                )
            ones[key] = series
        inserted: set[tuple] = set()
        for series in many.series:
            v = series.values[k]
            if v is None:
                continue
            key = matching.sig(series.labels)
            match = ones.get(key)
            if match is None:
                continue
            left, right = (match.values[k], v) if matching.card == "OneToMany" else (v, match.values[k])
            value, keep = element(op, left, right, matching.return_bool)
            labels = _result_labels(series.labels, match.labels, op, matching)
            if not keep:
                continue
            identity = key if matching.card == "OneToOne" else tuple(sorted(labels.items()))
            if identity in inserted:
                raise PromQLError(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                    if matching.card == "OneToOne"
                    else "multiple matches for labels: grouping labels must ensure unique matches",
                    "execution",
                )
            inserted.add(identity)
            _put(out, labels, count, k, value)
    return Vector(list(out.values()))


def _result_labels(many: Labels, one: Labels, op: str, matching: Matching) -> Labels:
    labels = dict(many)
    if op in ARITHMETIC or matching.return_bool:
        labels.pop(NAME, None)
    if matching.card == "OneToOne":
        if matching.on:
            labels = {k: v for k, v in labels.items() if k in matching.names}
        else:
            for name in matching.names:
                labels.pop(name, None)
    for name in matching.include:
        if one.get(name):
            labels[name] = one[name]
        else:
            labels.pop(name, None)
    return labels


def _put(out: dict[tuple, Series], labels: Labels, count: int, k: int, value: float) -> None:
    key = tuple(sorted(labels.items()))
    series = out.get(key)
    if series is None:
        series = out[key] = Series(labels, [None] * count)
    series.values[k] = value


def _set_operation(op: str, lhs: Vector, rhs: Vector, matching: Matching, count: int) -> Vector:
    out: dict[tuple, Series] = {}
    for k in range(count):
        right = {matching.sig(s.labels) for s in rhs.series if s.values[k] is not None}
        left_keys = set()
        for series in lhs.series:
            v = series.values[k]
            if v is None:
                continue
            key = matching.sig(series.labels)
            left_keys.add(key)
            if op == "or" or (op == "and") == (key in right):
                _put(out, series.labels, count, k, v)
        if op == "or":
            for series in rhs.series:
                v = series.values[k]
                if v is not None and matching.sig(series.labels) not in left_keys:
                    _put(out, series.labels, count, k, v)
    return Vector(list(out.values()))
