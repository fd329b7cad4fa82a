"""Rule queries: a registry of query types, each validating and evaluating its own query.

A query type turns a rule's ``query`` (a JSON object) into one value per label group
at a given time. New types (the logs component's ``log_count``) register with
``register(QueryType)``. Built in:

- ``metric``: aggregation of one metric over a window, grouped by labels.
- ``ratio``: ``numerator / denominator * scale`` of two metric queries (error rate,
  average response time).
- ``host_down``: seconds since each host was last seen.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from collector_server.alerts import matchers as m
from collector_server.replica import read_connection as connection  # the replica on API reads

AGGREGATIONS = ("avg", "min", "max", "sum", "count", "last", "rate", "increase", "p95", "p99")
# Windows at least this long read the 1-minute rollups where the aggregation allows it.
ROLLUP_MIN_WINDOW = 3600
ROLLUP_AGGREGATIONS = {"avg", "min", "max", "sum", "count", "rate", "increase"}
MAX_WINDOW = 31 * 86400


@dataclass(slots=True)
class GroupValue:
    """The value of one label group; ``value`` is None when the group has no data in the window."""

    labels: dict[str, str]
    value: float | None
    last_ts: datetime | None = None


@dataclass
class QueryResult:
    """Values per label group; ``absent_value`` is the value of a group missing from ``groups``.

    None (the default) means a missing group has no data (the rule's no-data policy applies);
    a count query sets 0, since no matching record is a count of zero.
    """

    groups: dict[str, GroupValue] = field(default_factory=dict)
    absent_value: float | None = None
    _index: _ValueIndex | None = field(default=None, init=False, repr=False, compare=False)

    def add(self, labels: dict[str, str], value: float | None, last_ts: datetime | None = None) -> None:
        self.groups[m.labels_key(labels)] = GroupValue(labels, value, last_ts)

    def candidates(self, comparison: str, threshold: float) -> list[str]:
        """The keys of the groups whose value meets ``comparison threshold``, plus every group without
        a comparable value (None or NaN), in the order of ``groups``.

        Thousands of rules share one result (the same metric, matchers and grouping, thresholds
        apart): the values are sorted once per result and each rule finds its breaching groups by
        bisection instead of comparing every group.
        """
        index = self._index
        if index is None or index.groups is not self.groups or index.size != len(self.groups):
            index = self._index = _ValueIndex(self.groups)
        return index.candidates(comparison, threshold)


class _ValueIndex:
    """The comparable values of a result's groups, sorted, with their keys and original positions."""

    def __init__(self, groups: dict[str, GroupValue]) -> None:
        self.groups, self.size = groups, len(groups)
        ordered: list[tuple[float, int, str]] = []
        self.uncomparable: list[tuple[int, str]] = []
        for position, (key, group) in enumerate(groups.items()):
            value = group.value
            if value is None or (isinstance(value, float) and math.isnan(value)):
                self.uncomparable.append((position, key))
            else:
                ordered.append((value, position, key))
        ordered.sort(key=lambda item: item[0])
        self.values = [v for v, _, _ in ordered]
        self.entries = [(p, k) for _, p, k in ordered]

    def candidates(self, comparison: str, threshold: float) -> list[str]:
        values, entries = self.values, self.entries
        if comparison == ">":
            chosen = entries[bisect_right(values, threshold) :]
        elif comparison == ">=":
            chosen = entries[bisect_left(values, threshold) :]
        elif comparison == "<":
            chosen = entries[: bisect_left(values, threshold)]
        elif comparison == "<=":
            chosen = entries[: bisect_right(values, threshold)]
        elif comparison == "==":
            chosen = entries[bisect_left(values, threshold) : bisect_right(values, threshold)]
        elif comparison == "!=":
            chosen = entries[: bisect_left(values, threshold)] + entries[bisect_right(values, threshold) :]
        else:
            raise ValueError(f"unknown comparison {comparison!r}")
        chosen = chosen + self.uncomparable if self.uncomparable else chosen
        if len(chosen) > 1:
            chosen = sorted(chosen)
        return [key for _, key in chosen]


class QueryType:
    """Base class: subclasses set ``name`` and implement ``validate`` and ``evaluate``."""

    name = ""

    def validate(self, query: dict[str, Any]) -> dict[str, Any]:
        """Return the normalized query or raise ValueError naming the bad part."""
        raise NotImplementedError

    def evaluate(self, query: dict[str, Any], now: datetime, lookback: int = 0) -> QueryResult:
        """Return one value per label group at ``now`` (groups known but without data have None)."""
        raise NotImplementedError


REGISTRY: dict[str, QueryType] = {}


def register(query_type: QueryType) -> QueryType:
    REGISTRY[query_type.name] = query_type
    return query_type


def get(name: str) -> QueryType:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown query type {name!r} (known: {', '.join(sorted(REGISTRY))})") from None


def _positive_int(
    query: dict[str, Any], key: str, default: int | None = None, maximum: int = MAX_WINDOW
) -> int:
    value = query.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0 or value > maximum:
        raise ValueError(f"{key} must be a number of seconds between 1 and {maximum}")
    return int(value)


def _group_by(query: dict[str, Any]) -> list[str]:
    group_by = query.get("group_by", [])
    if not isinstance(group_by, list) or not all(isinstance(x, str) and x for x in group_by):
        raise ValueError("group_by must be a list of label names")
    return group_by


class MetricQuery(QueryType):
    """``{"metric", "matchers", "aggregation", "window", "group_by"}`` over samples or 1m rollups."""

    name = "metric"

    def validate(self, query: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(query, dict):
            raise ValueError("query must be an object")
        metric = query.get("metric")
        if not isinstance(metric, str) or not metric:
            raise ValueError("metric is required")
        aggregation = query.get("aggregation", "avg")
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {aggregation!r} (use one of {', '.join(AGGREGATIONS)})")
        return {
            "metric": metric,
            "matchers": m.normalize(query.get("matchers")),
            "aggregation": aggregation,
            "window": _positive_int(query, "window", 300),
            "group_by": _group_by(query),
        }

    def evaluate(self, query: dict[str, Any], now: datetime, lookback: int = 0) -> QueryResult:
        series = _matching_series(query["metric"], query["matchers"])
        groups: dict[str, dict[str, str]] = {}
        series_group: list[tuple[int, str]] = []
        for sid, labels in series:
            group_labels = {k: str(labels.get(k, "")) for k in query["group_by"]}
            key = m.labels_key(group_labels)
            groups[key] = group_labels
            series_group.append((sid, key))
        result = QueryResult()
        if not series_group and not query["group_by"]:
            result.add({}, None)
            return result
        values = aggregate(series_group, query["aggregation"], query["window"], now)
        last = _last_seen(series_group, now, max(lookback, query["window"]))
        for key, labels in groups.items():
            result.add(labels, values.get(key), last.get(key))
        return result


def evaluate_metric_batch(
    base: dict[str, Any], specs: list[tuple[str, int]], now: datetime, lookback: int
) -> dict[tuple[str, int], QueryResult]:
    """Evaluate several (aggregation, window) pairs over one selection of series in one scan.

    Rules that share a metric, matchers and grouping differ only in aggregation and window;
    one query with a FILTER per pair reads the samples once. Only raw-sample aggregations
    are batched (not rate/increase, not rollup-sized windows).
    """
    series = _matching_series(base["metric"], base["matchers"])
    groups: dict[str, dict[str, str]] = {}
    series_group: list[tuple[int, str]] = []
    for sid, labels in series:
        group_labels = {k: str(labels.get(k, "")) for k in base["group_by"]}
        key = m.labels_key(group_labels)
        groups[key] = group_labels
        series_group.append((sid, key))
    values: dict[tuple[str, int], dict[str, float]] = {spec: {} for spec in specs}
    last: dict[str, datetime] = {}
    if series_group:
        longest = max([lookback, *(w for _, w in specs)])
        exprs = [_BATCH_SQL[agg].format(f="FILTER (WHERE s.ts > %s)") for agg, _ in specs]
        ids, keys = _unnest(series_group)
        params = [now - timedelta(seconds=w) for _, w in specs]
        window = [now - timedelta(seconds=longest), now]
        if len(groups) == len(series_group):
            # One series per group (the usual group-by-host): group by the series id, which the
            # index scan already delivers in order, and name the groups here; no text sort.
            group_of = dict(series_group)
            sql = (
                f"SELECT s.series_id, max(s.ts), {', '.join(exprs)} FROM monitoring_sample s "
                "WHERE s.series_id = ANY(%s::bigint[]) AND s.ts > %s AND s.ts <= %s GROUP BY s.series_id"
            )
            args = [*params, ids, *window]
        else:
            group_of = None
            sql = (
                f"SELECT g.grp, max(s.ts), {', '.join(exprs)} FROM monitoring_sample s "
                + _JOIN.format(alias="s")
                + " WHERE s.ts > %s AND s.ts <= %s GROUP BY g.grp"
            )
            args = [*params, ids, keys, *window]
        with connection.cursor() as cursor:
            cursor.execute(sql, args)
            for grp, last_ts, *row in cursor.fetchall():
                if group_of is not None:
                    grp = group_of[grp]
                last[grp] = last_ts
                for spec, value in zip(specs, row, strict=True):
                    if value is not None:
                        values[spec][grp] = float(value)
    out = {}
    for spec in specs:
        result = QueryResult()
        if not series_group and not base["group_by"]:
            result.add({}, None)
        spec_values = values[spec]
        result.groups = {
            key: GroupValue(labels, spec_values.get(key), last.get(key)) for key, labels in groups.items()
        }
        out[spec] = result
    return out


def batchable(query_type: str, query: dict[str, Any]) -> bool:
    """Return True when a rule's query can share a scan (see evaluate_metric_batch)."""
    return (
        query_type == MetricQuery.name
        and query["aggregation"] in _BATCH_SQL
        and not (query["window"] >= ROLLUP_MIN_WINDOW and query["aggregation"] in ROLLUP_AGGREGATIONS)
    )


def _matching_series(metric: str, matchers: list[dict[str, str]]) -> list[tuple[int, dict]]:
    # Only non-empty equalities narrow the SQL: `label = ""` also matches series without the label.
    equal = {x["name"]: x["value"] for x in matchers if x["op"] == "=" and x["value"]}
    from collector_server.monitoring.models import Series

    qs = Series.objects.filter(name=metric)
    if equal:
        qs = qs.filter(labels__contains=equal)
    return [(sid, labels) for sid, labels in qs.values_list("id", "labels") if m.matches(matchers, labels)]


def _unnest(series_group: list[tuple[int, str]]) -> tuple[list[int], list[str]]:
    return [s for s, _ in series_group], [g for _, g in series_group]


_RAW_SQL = {
    "avg": "avg(s.value)",
    "min": "min(s.value)",
    "max": "max(s.value)",
    "sum": "sum(s.value)",
    "count": "count(*)::float",
    "p95": "percentile_cont(0.95) WITHIN GROUP (ORDER BY s.value)",
    "p99": "percentile_cont(0.99) WITHIN GROUP (ORDER BY s.value)",
    "last": "(array_agg(s.value ORDER BY s.ts DESC, s.series_id DESC))[1]",
}
_BATCH_SQL = {
    "avg": "avg(s.value) {f}",
    "min": "min(s.value) {f}",
    "max": "max(s.value) {f}",
    "sum": "sum(s.value) {f}",
    "count": "(count(*) {f})::float",
    "p95": "percentile_cont(0.95) WITHIN GROUP (ORDER BY s.value) {f}",
    "p99": "percentile_cont(0.99) WITHIN GROUP (ORDER BY s.value) {f}",
    "last": "(array_agg(s.value ORDER BY s.ts DESC, s.series_id DESC) {f})[1]",
}
_ROLLUP_SQL = {
    "avg": "sum(r.sum) / nullif(sum(r.count), 0)",
    "min": "min(r.min)",
    "max": "max(r.max)",
    "sum": "sum(r.sum)",
    "count": "sum(r.count)::float",
}


def aggregate(
    series_group: list[tuple[int, str]], aggregation: str, window: int, now: datetime
) -> dict[str, float]:
    """Return {group key: aggregated value} over (now - window, now]."""
    if not series_group:
        return {}
    ids, keys = _unnest(series_group)
    start = now - timedelta(seconds=window)
    use_rollup = window >= ROLLUP_MIN_WINDOW and aggregation in ROLLUP_AGGREGATIONS
    args: list[Any] = [ids, keys, start, now]
    if aggregation in ("rate", "increase"):
        if use_rollup:
            sql = _ROLLUP_INCREASE
        else:
            sql = _RAW_INCREASE
            args = [ids, keys, start, start, now]
    elif use_rollup:
        sql = _ROLLUP_TEMPLATE.format(expr=_ROLLUP_SQL[aggregation])
    else:
        sql = _RAW_TEMPLATE.format(expr=_RAW_SQL[aggregation])
    with connection.cursor() as cursor:
        cursor.execute(sql, args)
        rows = cursor.fetchall()
    out = {key: float(value) for key, value in rows if value is not None}
    if aggregation == "rate":
        out = {key: value / window for key, value in out.items()}
    return out


_JOIN = "JOIN unnest(%s::bigint[], %s::text[]) AS g(sid, grp) ON {alias}.series_id = g.sid"
_RAW_TEMPLATE = (
    "SELECT g.grp, {expr} FROM monitoring_sample s "
    + _JOIN.format(alias="s")
    + " WHERE s.ts > %s AND s.ts <= %s GROUP BY g.grp"
)
_ROLLUP_TEMPLATE = (
    "SELECT g.grp, {expr} FROM monitoring_rollup_1m r "
    + _JOIN.format(alias="r")
    + " WHERE r.bucket >= %s AND r.bucket <= %s GROUP BY g.grp"
)
# The increase of a counter over (start, now]: every step between consecutive samples, the first
# from the last sample at or before start (the newest partition is read first, so this is one
# index probe), so the step across the window's edge counts. A decrease is a counter reset: the new value is the increase. A series
# with no earlier sample starts counting at its first sample, except a process-lifetime counter
# from the SDK (it has an ``instance`` label, a new one per process, and starts at 0): there the
# first value is what the new process counted, and dropping it would lose every restart's first
# flush.
_RAW_INCREASE = (
    "WITH g AS ("
    " SELECT g.sid, g.grp, ser.labels ? 'instance' AS from_zero"
    " FROM unnest(%s::bigint[], %s::text[]) AS g(sid, grp) JOIN monitoring_series ser ON ser.id = g.sid"
    "), pts AS ("
    " SELECT g.sid, g.grp, g.from_zero, b.ts, b.value, true AS is_base FROM g CROSS JOIN LATERAL ("
    "  SELECT s.ts, s.value FROM monitoring_sample s"
    "  WHERE s.series_id = g.sid AND s.ts <= %s ORDER BY s.ts DESC LIMIT 1) b"
    " UNION ALL"
    " SELECT g.sid, g.grp, g.from_zero, s.ts, s.value, false FROM monitoring_sample s JOIN g ON s.series_id = g.sid"
    " WHERE s.ts > %s AND s.ts <= %s"
    "), steps AS ("
    " SELECT grp, from_zero, value, is_base, lag(value) OVER (PARTITION BY sid ORDER BY ts) AS prev FROM pts"
    ") "
    "SELECT grp, sum(CASE"
    " WHEN prev IS NULL THEN CASE WHEN from_zero AND NOT is_base THEN value ELSE 0 END"
    " WHEN value >= prev THEN value - prev ELSE value END) "
    "FROM steps GROUP BY grp"
)
_ROLLUP_INCREASE = (
    "SELECT g.grp, sum(coalesce(r.increase, 0)) FROM monitoring_rollup_1m r "
    + _JOIN.format(alias="r")
    + " WHERE r.bucket >= %s AND r.bucket <= %s GROUP BY g.grp"
)


def _last_seen(series_group: list[tuple[int, str]], now: datetime, lookback: int) -> dict[str, datetime]:
    """Return the time of the latest sample of each group within the lookback."""
    if not series_group:
        return {}
    ids, keys = _unnest(series_group)
    sql = (
        "SELECT g.grp, max(s.ts) FROM monitoring_sample s "
        + _JOIN.format(alias="s")
        + " WHERE s.ts > %s AND s.ts <= %s GROUP BY g.grp"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [ids, keys, now - timedelta(seconds=lookback), now])
        return dict(cursor.fetchall())


class RatioQuery(QueryType):
    """``{"numerator": metric query, "denominator": metric query, "scale": 100, "group_by": [...]}``."""

    name = "ratio"

    def validate(self, query: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(query, dict):
            raise ValueError("query must be an object")
        group_by = _group_by(query)
        parts = {}
        for part in ("numerator", "denominator"):
            sub = query.get(part)
            if not isinstance(sub, dict):
                raise ValueError(f"{part} must be a metric query object")
            try:
                parts[part] = MetricQuery().validate({**sub, "group_by": group_by})
            except ValueError as exc:
                raise ValueError(f"{part}: {exc}") from None
        scale = query.get("scale", 1)
        if isinstance(scale, bool) or not isinstance(scale, int | float) or scale == 0:
            raise ValueError("scale must be a non-zero number")
        return {**parts, "scale": scale, "group_by": group_by}

    def evaluate(self, query: dict[str, Any], now: datetime, lookback: int = 0) -> QueryResult:
        metric = MetricQuery()
        num = metric.evaluate(query["numerator"], now, lookback)
        den = metric.evaluate(query["denominator"], now, lookback)
        result = QueryResult()
        for key, group in den.groups.items():
            top = num.groups.get(key)
            value = None
            if group.value and top is not None:
                value = (top.value or 0.0) / group.value * query["scale"]
            elif group.value and top is None:
                value = 0.0
            result.groups[key] = GroupValue(group.labels, value, group.last_ts)
        return result


class HostDownQuery(QueryType):
    """Seconds since each host's agent was last heard from, labelled ``host``."""

    name = "host_down"

    def validate(self, query: dict[str, Any]) -> dict[str, Any]:
        if query in (None, ""):
            query = {}
        if not isinstance(query, dict):
            raise ValueError("query must be an object")
        return {"matchers": m.normalize(query.get("matchers"))}

    def evaluate(self, query: dict[str, Any], now: datetime, lookback: int = 0) -> QueryResult:
        from collector_server.monitoring.models import Host

        result = QueryResult()
        for hostname, labels, last_seen in Host.objects.values_list("hostname", "labels", "last_seen"):
            group = {"host": hostname}
            if m.matches(query["matchers"], {**(labels or {}), **group}):
                result.add(group, max(0.0, (now - last_seen).total_seconds()), last_seen)
        return result


register(MetricQuery())
register(RatioQuery())
register(HostDownQuery())
