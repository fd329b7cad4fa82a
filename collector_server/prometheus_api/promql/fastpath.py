"""The common dashboard query answered without the general evaluator, JSON included.

`sum by (host) (rate(x[5m]))` over a day at a one-minute step is 1,440 points per host:
building a Python object per point costs more than computing it. When a range query is
exactly an aggregation (sum, avg, min, max, count; by, without or neither) of a range
function the rollups answer, or such a function alone, and the rollups are the source:

* vectorised.py first: Postgres sends the buckets as one binary bytea, numpy computes the
  windows, the function, the groups and each group's `values` JSON;
* where it declines (buckets without edges, a window too wide to gather), the SQL
  statements below: Postgres computes the window, aggregates the groups and writes each
  series' `values` array.

Python only assembles the response. Anything else returns None and takes the general path
(which gives the same answers: tests/prometheus_api/test_query_api.py).
"""

from __future__ import annotations

import json
from datetime import timedelta

from collector_server.prometheus_api.promql import results_cache, rollup_windows, storage, vectorised
from collector_server.prometheus_api.promql.aggregate import group_labels
from collector_server.prometheus_api.promql.evaluator import KEEPS_NAME, Evaluator
from collector_server.prometheus_api.promql.functions import ROLLUP_FUNCTIONS
from collector_server.prometheus_api.promql.storage import Scope
from collector_server.prometheus_api.promql.values import Steps, without_name

SQL_AGGREGATES = {"sum": "sum", "avg": "avg", "min": "min", "max": "max", "count": "count"}
VALUE_TEXT = (
    "CASE WHEN value = 'NaN'::float8 THEN 'NaN' WHEN value = 'Infinity'::float8 THEN '+Inf' "
    "WHEN value = '-Infinity'::float8 THEN '-Inf' ELSE value::text END"
)


def _unwrap(node: object) -> object:
    while type(node).__name__ == "ParenExpr":
        node = node.expr
    return node


def _shape(node: object) -> tuple[str | None, list[str], bool, object] | None:
    """Return (aggregation or None, labels, by, the Call) when the query has the fast shape."""
    node = _unwrap(node)
    op, names, by = None, [], True
    if type(node).__name__ == "AggregateExpr":
        op = str(node.op)
        if op not in SQL_AGGREGATES or node.param is not None:
            return None
        if node.modifier is not None:
            names = list(node.modifier.labels)
            by = str(node.modifier.type).endswith("By")
        node = _unwrap(node.expr)
    if type(node).__name__ != "Call" or node.func.name not in ROLLUP_FUNCTIONS:
        return None
    matrix = node.args[0] if node.args else None
    if type(matrix).__name__ != "MatrixSelector" or matrix.vector_selector.at is not None:
        return None
    return op, names, by, node


def matrix_json(tree: object, steps: Steps, scope: Scope | None) -> str | None:
    """Return the `result` array of a query_range answer as JSON text, or None (general path)."""
    if steps.count < 2:
        return None
    shape = _shape(tree)
    if shape is None:
        return None
    op, names, by, call = shape
    matrix = call.args[0]
    range_ms = int(matrix.range.total_seconds() * 1000)
    selector = matrix.vector_selector
    offset_ms = int((selector.offset or timedelta(0)).total_seconds() * 1000)
    level = storage.source_level(steps, range_ms, offset_ms)
    if level == storage.RAW:
        return None
    series = Evaluator(steps, scope)._selected(selector)
    groups: dict[tuple, tuple[dict[str, str], int]] = {}
    members: list[tuple[int, int]] = []
    for s in series:
        if op is None:
            labels = s.metric if call.func.name in KEEPS_NAME else without_name(s.metric)
        else:
            labels = group_labels(s.labels | {"__name__": s.name}, names, by)
        key = tuple(sorted(labels.items()))
        if op is None and key in groups:
            return None  # two series with one label set: let the general path decide
        gid = groups.setdefault(key, (labels, len(groups)))[1]
        members.append((s.id, gid))
    if not series:
        return "[]"
    infos = storage._infos(series)
    # numpy over the binary-copied buckets (vectorised.py), the blocks of the range before the
    # rollups' immutable bound from the results cache; else the SQL statements below.
    gids = [gid for _, gid in members]
    args = (infos, gids, len(groups), steps, range_ms, offset_ms, level, call.func.name, op)
    if results_cache.enabled():
        shape = [scope.sql if scope else None, list(scope.params) if scope else None, names, by]
        arrays = results_cache.matrix_arrays(*args, shape=shape)
    else:
        arrays = vectorised.matrix_arrays(*args)
    if arrays is not None:
        return _result(groups, arrays)
    query = rollup_windows.window_query(infos, steps, range_ms, offset_ms, level, call.func.name)
    rows = storage.fetch(*_matrix_sql(query, members, steps, op), rollup_windows.QUERY_SETTINGS)
    if query.dense and sum(row[2] for row in rows) != sum(row[3] for row in rows):
        query = rollup_windows.anchored_query(infos, steps, range_ms, offset_ms, level, call.func.name)
        rows = storage.fetch(*_matrix_sql(query, members, steps, op), rollup_windows.QUERY_SETTINGS)
    arrays = {gid: text for gid, text, *_ in rows if text is not None}
    if len(groups) == len(members):  # rows were per series: name them by their group
        gid_of = dict(members)
        arrays = {gid_of[sid]: text for sid, text in arrays.items()}
    return _result(groups, arrays)


def _result(groups: dict[tuple, tuple[dict[str, str], int]], arrays: dict[int, str]) -> str:
    """The `result` array: each group with values, in label order."""
    parts = [
        f'{{"metric":{json.dumps(labels, separators=(",", ":"))},"values":{arrays[gid]}}}'
        for key, (labels, gid) in sorted(groups.items())
        if gid in arrays
    ]
    return "[" + ",".join(parts) + "]"


def _matrix_sql(
    query: rollup_windows.WindowQuery, members: list[tuple[int, int]], steps: Steps, op: str | None
) -> tuple[str, dict[str, object]]:
    """Group the window query's rows and write each group's `values` array as JSON text.

    Rows (gid or series id, values JSON, dense steps, steps reached): for dense_query the
    last two must be equal (rollup_windows.complete), else the anchored statement answers.
    """
    whole = steps.start_ms % 1000 == 0 and steps.step_ms % 1000 == 0
    ts = "(%(start_ms)s::bigint + k * %(step_ms)s::bigint) / 1000"
    ts = ts if whole else f"round(({ts})::numeric / 1000.0, 3)"
    # dense_query's rows: only the steps' rows hold values; all count for complete().
    is_step, covers = ("v.is_step", "v.covers") if query.dense else ("true", "0")
    params = dict(query.params)
    params.update(
        sids=[m[0] for m in members],
        gids=[m[1] for m in members],
        start_ms=steps.start_ms,
        step_ms=steps.step_ms,
    )
    if len({gid for _, gid in members}) == len(members):
        # One series per group (e.g. `sum by (host)` with a series per host): no grouping.
        value = "1::float8" if op == "count" else "value"
        sql = f"""
            WITH v AS ({query.sql})
            SELECT series_id,
                   json_agg(json_build_array({ts}, {VALUE_TEXT.replace("value", value)}) ORDER BY k)
                       FILTER (WHERE {is_step} AND value IS NOT NULL)::text,
                   count(*) FILTER (WHERE {is_step}), sum({covers})
            FROM v GROUP BY series_id
        """
        return sql, params
    sql = f"""
        WITH v AS ({query.sql}),
             g AS (SELECT * FROM unnest(%(sids)s::bigint[], %(gids)s::int[]) AS g(sid, gid))
        SELECT gid, json_agg(json_build_array({ts}, {VALUE_TEXT}) ORDER BY k) FILTER (WHERE value IS NOT NULL)::text,
               sum(dense), sum(covers)
        FROM (
            SELECT g.gid, v.k,
                   CASE WHEN bool_or({is_step} AND v.value IS NOT NULL)
                        THEN {SQL_AGGREGATES.get(op or "max")}(v.value) FILTER (WHERE {is_step}) END::float8,
                   count(*) FILTER (WHERE {is_step}), sum({covers})
            FROM v JOIN g ON g.sid = v.series_id GROUP BY 1, 2
        ) a (gid, k, value, dense, covers) GROUP BY gid
    """
    return sql, params
