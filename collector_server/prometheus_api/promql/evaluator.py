"""Evaluate a parsed PromQL expression over the steps of a query.

Data is read per selector (storage.py does the selection and window aggregation in
SQL); everything after that works on one value per series and step.
"""

from __future__ import annotations

import math
from datetime import timedelta

import promql_parser

from collector_server.prometheus_api.promql import aggregate, binary, storage
from collector_server.prometheus_api.promql.functions import (
    ELEMENTWISE,
    RANGE_FUNCTIONS,
    ROLLUP_FUNCTIONS,
    bucket_quantile,
)
from collector_server.prometheus_api.promql.storage import LabelMatcher, Scope
from collector_server.prometheus_api.promql.values import (
    NAME,
    PromQLError,
    RangeSamples,
    Scalar,
    Series,
    Steps,
    String,
    Value,
    Vector,
    without_name,
)

LOOKBACK_MS = 5 * 60 * 1000
# Functions that keep the metric name (the others drop it, as Prometheus does).
KEEPS_NAME = {"last_over_time", "sort", "sort_desc"}


def parse(query: str) -> object:
    """Parse PromQL, turning the parser's error into Prometheus' bad_data message."""
    try:
        return promql_parser.parse(query)
    except (ValueError, TypeError) as exc:
        raise PromQLError(f"1:1: parse error: {exc}") from None


def _ms(delta: timedelta | None) -> int:
    return int(delta.total_seconds() * 1000) if delta else 0


class Evaluator:
    def __init__(self, steps: Steps, scope: Scope | None = None) -> None:
        self.steps = steps
        self.count = steps.count
        self.scope = scope
        self.times = steps.times_ms()
        # The order sort() and sort_desc() asked for, applied to an instant query's result.
        self.order: str | None = None

    def eval(self, node: object) -> Value:
        kind = type(node).__name__
        method = getattr(self, f"_eval_{kind}", None)
        if method is None:
            raise PromQLError(f"{kind} expressions are not supported by fleetwatch")
        return method(node)

    # Leaves -------------------------------------------------------------------------------

    def _eval_NumberLiteral(self, node) -> Scalar:
        return Scalar([float(node.val)] * self.count)

    def _eval_StringLiteral(self, node) -> String:
        return String(node.val)

    def _eval_ParenExpr(self, node) -> Value:
        return self.eval(node.expr)

    def _eval_SubqueryExpr(self, node) -> Value:
        raise PromQLError("subqueries are not supported by fleetwatch")

    def _eval_UnaryExpr(self, node) -> Value:
        value = self.eval(node.expr)
        if isinstance(value, Scalar):
            return Scalar([-v for v in value.values])
        if isinstance(value, Vector):
            return Vector(
                [
                    Series(without_name(s.labels), [None if v is None else -v for v in s.values])
                    for s in value.series
                ]
            )
        raise PromQLError("unary minus needs a scalar or an instant vector")

    def _selected(self, selector) -> list[storage.StoredSeries]:
        if selector.at is not None:
            raise PromQLError("the @ modifier is not supported by fleetwatch")
        matchers = [
            LabelMatcher(m.name, storage.MATCH_OPS[str(m.op).rsplit(".", 1)[-1]], m.value)
            for m in selector.matchers.matchers
        ]
        if selector.matchers.or_matchers:
            raise PromQLError("'or' inside a selector is not supported by fleetwatch")
        if selector.name and not any(m.name == NAME for m in matchers):
            matchers.insert(0, LabelMatcher(NAME, "=", selector.name))
        return storage.select_series(matchers, self.scope)

    def _eval_VectorSelector(self, node) -> Vector:
        series = self._selected(node)
        offset = _ms(node.offset)
        # The latest sample in the lookback: exact from the buckets' edges when steps are whole buckets.
        level = storage.source_level(self.steps, 0, offset, level_window_ms=LOOKBACK_MS)
        points = storage.latest_points(series, self.steps, offset, LOOKBACK_MS, level)
        return Vector([Series(s.metric, points[s.id]) for s in series if s.id in points])

    def _eval_MatrixSelector(self, node) -> RangeSamples:
        if self.count != 1:
            raise PromQLError(
                'invalid expression type "range vector" for range query, must be Scalar or instant Vector'
            )
        selector = node.vector_selector
        series = self._selected(selector)
        at = self.times[0] - _ms(selector.offset)
        samples = storage.raw_samples(series, at, _ms(node.range))
        return RangeSamples([(s.metric, samples[s.id]) for s in series if s.id in samples])

    # Functions ----------------------------------------------------------------------------

    def _eval_Call(self, node) -> Value:
        name = node.func.name
        args = list(node.args)
        if name in RANGE_FUNCTIONS:
            return self._range_function(name, args)
        special = getattr(self, f"_fn_{name}", None)
        if special is not None:
            return special(args)
        if name in ELEMENTWISE:
            vector = self._vector(args[0], name)
            extra = [self._scalar(arg, name) for arg in args[1:]]
            fn = ELEMENTWISE[name]
            out = []
            for s in vector.series:
                values = [
                    None if v is None else fn(v, *(e.values[k] for e in extra))
                    for k, v in enumerate(s.values)
                ]
                out.append(Series(without_name(s.labels), values))
            return Vector(out)
        raise PromQLError(f'function "{name}" is not supported by fleetwatch')

    def _range_function(self, name: str, args: list) -> Vector:
        q = None
        if name == "quantile_over_time":
            q_values = self._scalar(args[0], name).values
            q, args = q_values[0], args[1:]
        matrix = args[0]
        if type(matrix).__name__ != "MatrixSelector":
            raise PromQLError(f'function "{name}" over a subquery is not supported by fleetwatch')
        selector = matrix.vector_selector
        series = self._selected(selector)
        range_ms, offset = _ms(matrix.range), _ms(selector.offset)
        level = (
            storage.source_level(self.steps, range_ms, offset) if name in ROLLUP_FUNCTIONS else storage.RAW
        )
        if level != storage.RAW:
            found = storage.rollup_values(series, self.steps, range_ms, offset, level, name)
        else:
            found = self._raw_range_values(name, series, range_ms, offset, q)
        out = []
        for s in series:
            values = found.get(s.id)
            if values is None:
                continue
            labels = s.metric if name in KEEPS_NAME else without_name(s.metric)
            out.append(Series(labels, values))
        return Vector(out)

    def _raw_range_values(
        self, name: str, series: list, range_ms: int, offset: int, q: float | None
    ) -> dict[int, list[float | None]]:
        windows = storage.window_stats(series, self.steps, range_ms, offset, q)
        fn = RANGE_FUNCTIONS[name]
        return {
            sid: [
                None if st is None else fn(st, t - offset, range_ms)
                for st, t in zip(stats, self.times, strict=True)
            ]
            for sid, stats in windows.items()
        }

    def _fn_time(self, args: list) -> Scalar:
        return Scalar([t / 1000 for t in self.times])

    def _fn_vector(self, args: list) -> Vector:
        return Vector([Series({}, list(self._scalar(args[0], "vector").values))])

    def _fn_scalar(self, args: list) -> Scalar:
        vector = self._vector(args[0], "scalar")
        out = []
        for k in range(self.count):
            present = [s.values[k] for s in vector.series if s.values[k] is not None]
            out.append(present[0] if len(present) == 1 else math.nan)
        return Scalar(out)

    def _fn_absent(self, args: list) -> Vector:
        vector = self._vector(args[0], "absent")
        values = [
            None if any(s.values[k] is not None for s in vector.series) else 1.0 for k in range(self.count)
        ]
        return (
            Vector([Series(self._absent_labels(args[0]), values)])
            if any(v is not None for v in values)
            else Vector()
        )

    def _fn_absent_over_time(self, args: list) -> Vector:
        present = self._range_function("present_over_time", args)
        values = [
            None if any(s.values[k] is not None for s in present.series) else 1.0 for k in range(self.count)
        ]
        labels = self._absent_labels(args[0].vector_selector)
        return Vector([Series(labels, values)]) if any(v is not None for v in values) else Vector()

    def _absent_labels(self, node) -> dict[str, str]:
        if type(node).__name__ != "VectorSelector":
            return {}
        labels: dict[str, str] = {}
        seen: set[str] = set()
        for m in node.matchers.matchers:
            if m.name == NAME:
                continue
            if str(m.op).endswith("Equal") and not str(m.op).endswith("NotEqual") and m.name not in seen:
                labels[m.name] = m.value
                seen.add(m.name)
            elif m.name in labels:
                labels.pop(m.name)
        return labels

    def _fn_histogram_quantile(self, args: list) -> Vector:
        q = self._scalar(args[0], "histogram_quantile")
        vector = self._vector(args[1], "histogram_quantile")
        groups: dict[tuple, tuple[dict, list[tuple[float, Series]]]] = {}
        for s in vector.series:
            try:
                upper = float(s.labels.get("le", ""))
            except ValueError:
                continue  # a series without a numeric le is ignored, as in Prometheus
            labels = {k: v for k, v in s.labels.items() if k not in ("le", NAME)}
            key = tuple(sorted(labels.items()))
            groups.setdefault(key, (labels, []))[1].append((upper, s))
        out = []
        for labels, buckets in groups.values():
            values: list[float | None] = []
            for k in range(self.count):
                present = [(upper, s.values[k]) for upper, s in buckets if s.values[k] is not None]
                values.append(bucket_quantile(q.values[k], present) if present else None)
            out.append(Series(labels, values))
        return Vector(out)

    def _fn_sort(self, args: list) -> Vector:
        self.order = "asc"
        return self._vector(args[0], "sort")

    def _fn_sort_desc(self, args: list) -> Vector:
        self.order = "desc"
        return self._vector(args[0], "sort_desc")

    def _fn_label_replace(self, args: list) -> Vector:
        import re

        vector = self._vector(args[0], "label_replace")
        dst, replacement, src, pattern = (self._string(a) for a in args[1:5])
        try:
            regex = re.compile(f"^(?:{pattern})$")
        except re.error as exc:
            raise PromQLError(f'invalid regular expression in label_replace(): "{pattern}": {exc}') from None
        template = re.sub(r"\$\{?(\w+)\}?", r"\\g<\1>", replacement)
        out = []
        for s in vector.series:
            match = regex.match(s.labels.get(src, ""))
            labels = dict(s.labels)
            if match:
                value = match.expand(template)
                if value:
                    labels[dst] = value
                else:
                    labels.pop(dst, None)
            out.append(Series(labels, s.values))
        return Vector(out)

    # Operators ----------------------------------------------------------------------------

    def _eval_AggregateExpr(self, node) -> Vector:
        op = str(node.op)
        vector = self._vector(node.expr, op)
        param = self._scalar(node.param, op) if node.param is not None else None
        # Without by/without, everything is one group.
        names, by = [], True
        if node.modifier is not None:
            names = list(node.modifier.labels)
            by = str(node.modifier.type).endswith("By")
        return aggregate.aggregate(op, vector, names, by, param, self.count)

    def _eval_BinaryExpr(self, node) -> Value:
        op = str(node.op)
        left, right = self.eval(node.lhs), self.eval(node.rhs)
        return_bool = bool(node.modifier.return_bool) if node.modifier is not None else False
        if isinstance(left, Scalar) and isinstance(right, Scalar):
            return binary.scalars(op, left, right, return_bool)
        if isinstance(left, Vector) and isinstance(right, Scalar):
            return binary.vector_scalar(op, left, right, False, return_bool)
        if isinstance(left, Scalar) and isinstance(right, Vector):
            return binary.vector_scalar(op, right, left, True, return_bool)
        if isinstance(left, Vector) and isinstance(right, Vector):
            return binary.vectors(op, left, right, binary.Matching(node.modifier), self.count)
        raise PromQLError(f"operator {op} needs scalars or instant vectors")

    # Argument checks ----------------------------------------------------------------------

    def _vector(self, node, where: str) -> Vector:
        value = self.eval(node)
        if not isinstance(value, Vector):
            raise PromQLError(f"expected an instant vector in {where}(), got {_type_name(value)}")
        return value

    def _scalar(self, node, where: str) -> Scalar:
        value = self.eval(node)
        if not isinstance(value, Scalar):
            raise PromQLError(f"expected a scalar in {where}(), got {_type_name(value)}")
        return value

    def _string(self, node) -> str:
        value = self.eval(node)
        if not isinstance(value, String):
            raise PromQLError(f"expected a string, got {_type_name(value)}")
        return value.value


def _type_name(value: Value) -> str:
    return {Vector: "instant vector", Scalar: "scalar", String: "string", RangeSamples: "range vector"}[
        type(value)
    ]
