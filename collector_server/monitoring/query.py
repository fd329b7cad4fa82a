"""The query engine behind the monitoring API: series selection, source choice, aggregation.

Source rule (``choose_level``): a query reads
  * 1 h rollups when step >= 1 h, the range is longer than 7 days, or the range starts
    before the 1 m rollup retention;
  * 1 m rollups when step >= 1 min, the range is longer than 6 hours, or the range starts
    before the raw retention -- or the 5 m rollups when the step is whole 5 minutes
    (``finer_level``; the PromQL engine too, when its windows are whole 5 minutes);
  * raw samples otherwise.
Rollups are computed by a periodic job, so the part of a range after the level's
``RollupState.done_until`` is aggregated on the fly from raw samples into the same buckets.

Every source is first turned into uniform rows (series_id, t, min, max, sum, count, last,
increase) -- a raw sample is a row with count 1 -- and then aggregated per step bucket.
``increase`` is the counter increase, reset-aware: when a counter goes down the new value
is taken as the increase since the reset, so a rate is never negative.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson
from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from collector_server.monitoring.models import RollupState, Series
from collector_server.orgs import scope
from collector_server.replica import read_connection as connection  # the replica on API reads

RAW = "raw"
LEVEL_1M = "1m"
LEVEL_5M = "5m"
LEVEL_1H = "1h"
LEVEL_SECONDS = {LEVEL_1M: 60, LEVEL_5M: 300, LEVEL_1H: 3600}
LEVEL_TABLES = {
    LEVEL_1M: "monitoring_rollup_1m",
    LEVEL_5M: "monitoring_rollup_5m",
    LEVEL_1H: "monitoring_rollup_1h",
}
# The 5 m level serves a query only while it keeps up with the 1 m level (its job runs right
# after the minutes'); otherwise the gap would be read from raw samples.
LEVEL_5M_MAX_LAG = timedelta(minutes=15)
RAW_MAX_RANGE = timedelta(hours=6)
ROLLUP_1M_MAX_RANGE = timedelta(days=7)
MAX_POINTS_PER_SERIES = 11_000
MAX_SERIES = 500
# A counter's first sample in a range gets its increase from the sample before it, if this recent.
COUNTER_LOOKBACK = timedelta(minutes=10)
AGGREGATIONS = ("avg", "min", "max", "sum", "count", "last", "rate", "p95", "p99")
PERCENTILES = ("p95", "p99")

# SQL per aggregation over the uniform rows r. A rate divides by the step, or by the rollup width
# when the step is finer than the rollups read (one rollup's increase spans its whole width).
_AGG_SQL = {
    "avg": "sum(r.sum) / nullif(sum(r.count), 0)",
    "min": "min(r.min)",
    "max": "max(r.max)",
    "sum": "sum(r.sum)",
    "count": "sum(r.count)",
    "last": "(array_agg(r.last ORDER BY r.t DESC))[1]",
    "rate": "sum(r.increase) / %(rate_seconds)s",
    "p95": "percentile_cont(0.95) WITHIN GROUP (ORDER BY r.sum / nullif(r.count, 0))",
    "p99": "percentile_cont(0.99) WITHIN GROUP (ORDER BY r.sum / nullif(r.count, 0))",
}
# The per-series path for one series per group; tests turn it off to compare with the other.
PER_SERIES_PATH = True
_FINITE = " AND v NOT IN ('NaN', 'Infinity', '-Infinity')"  # JSON has no NaN or infinity
# The same, of a single row: a step of one rollup bucket over one series per group (_per_series_sql).
_ROW_SQL = {
    "avg": "sum / nullif(count, 0)",
    "min": "min",
    "max": "max",
    "sum": "sum",
    "count": "count",
    "last": "last",
    "rate": "increase / %(rate_seconds)s",
}

MATCHER_RE = re.compile(r"^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


def _check_postgres_regex(text: str, value: str) -> None:
    """Refuse a regex Python accepts but Postgres does not (e.g. (?P<name>...)), as a 400 not a 500."""
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute("SELECT '' ~ %s", [value])
    except DatabaseError as exc:
        problem = str(exc).splitlines()[0]
        raise QueryError(
            "match[]", f"{text!r} is not a regular expression Postgres accepts: {problem}"
        ) from None


class QueryError(ValueError):
    """A query cannot run; `param` names the query parameter at fault."""

    def __init__(self, param: str, problem: str) -> None:
        super().__init__(f"{param}: {problem}")
        self.param = param
        self.problem = problem


@dataclass(frozen=True)
class Matcher:
    """One label matcher: label=value, label!=value, label=~regex, label!~regex."""

    label: str
    op: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Matcher:
        match = MATCHER_RE.match(text)
        if not match:
            raise QueryError("match[]", f"{text!r} is not label=value, label!=value, label=~re or label!~re")
        label, op, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as exc:
                raise QueryError("match[]", f"{text!r} has an invalid regular expression: {exc}") from None
            _check_postgres_regex(text, value)
        return cls(label, op, value)

    def sql(self) -> tuple[str, list[str]]:
        """Return a WHERE fragment on monitoring_series.labels and its parameters."""
        column = "coalesce(labels ->> %s, '')"
        if self.op == "=":
            return f"{column} = %s", [self.label, self.value]
        if self.op == "!=":
            return f"{column} <> %s", [self.label, self.value]
        anchored = f"^(?:{self.value})$"
        if self.op == "=~":
            return f"{column} ~ %s", [self.label, anchored]
        return f"{column} !~ %s", [self.label, anchored]


@dataclass
class SeriesInfo:
    id: int
    kind: str
    labels: dict[str, str]


@dataclass
class QueryResult:
    metric: str
    agg: str
    start: datetime
    end: datetime
    step: int
    level: str
    series: list[dict] = field(default_factory=list)


def choose_level(start: datetime, end: datetime, step: int, now: datetime | None = None) -> str:
    """Pick raw, 1m or 1h data for a range and step (see the module docstring)."""
    now = now or timezone.now()
    span = end - start
    if (
        step >= LEVEL_SECONDS[LEVEL_1H]
        or span > ROLLUP_1M_MAX_RANGE
        or start < now - timedelta(days=settings.ROLLUP_1M_RETENTION_DAYS)
    ):
        return LEVEL_1H
    if (
        step >= LEVEL_SECONDS[LEVEL_1M]
        or span > RAW_MAX_RANGE
        or start < now - timedelta(days=settings.RAW_RETENTION_DAYS)
    ):
        return LEVEL_1M
    return RAW


def finer_level(level: str, step: int) -> str:
    """The 5 m rollups instead of the 1 m ones for a step of whole 5 minutes (5x fewer rows).

    Only while the 5 m level keeps up with the 1 m level (``LEVEL_5M_MAX_LAG``). The PromQL
    engine asks too, when its windows, steps and offset are whole 5 minutes (storage.py).
    """
    if level != LEVEL_1M or step % LEVEL_SECONDS[LEVEL_5M]:
        return level
    five, minutes = done_until(LEVEL_5M), done_until(LEVEL_1M)
    if five is None or minutes is None or five < minutes - LEVEL_5M_MAX_LAG:
        return level
    return LEVEL_5M


def default_step(start: datetime, end: datetime) -> int:
    """Return a step giving about 300 points, at least 15 seconds."""
    return max(15, math.ceil((end - start).total_seconds() / 300))


def check_points(start: datetime, end: datetime, step: int) -> None:
    points = math.ceil((end - start).total_seconds() / step)
    if points > MAX_POINTS_PER_SERIES:
        raise QueryError(
            "step",
            f"{step}s is too small for the range: {points} points per series, "
            f"more than {MAX_POINTS_PER_SERIES}; use a step of at least "
            f"{math.ceil((end - start).total_seconds() / MAX_POINTS_PER_SERIES)}s",
        )


def select_series(metric: str, matchers: list[Matcher], limit: int = MAX_SERIES) -> list[SeriesInfo]:
    """Return the series named `metric` whose labels satisfy every matcher."""
    org_clause, org_params = scope.sql_filter("organization_id")
    where = ["name = %s", org_clause]
    params: list[object] = [metric, *org_params]
    for matcher in matchers:
        fragment, extra = matcher.sql()
        where.append(fragment)
        params.extend(extra)
    sql = f"SELECT id, kind, labels FROM monitoring_series WHERE {' AND '.join(where)} ORDER BY id LIMIT %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, limit + 1])
        rows = cursor.fetchall()
    if len(rows) > limit:
        raise QueryError(
            "match[]", f"selects more than {limit} series of {metric}; add matchers to narrow it"
        )
    return [SeriesInfo(r[0], r[1], _labels(r[2])) for r in rows]


def _labels(value: object) -> dict[str, str]:
    # Django's psycopg setup leaves jsonb as text for JSONField to decode.
    if isinstance(value, str | bytes):
        value = json.loads(value)
    return value if isinstance(value, dict) else {}


def done_until(level: str) -> datetime | None:
    """Return how far the rollup level has been computed, None if never."""
    state = RollupState.objects.filter(level=level).first()
    return state.done_until if state else None


def _raw_rows_sql(counters: bool = True, series: str = "ANY(%(ids)s)") -> str:
    """Uniform rows from raw samples of %(ids)s (or `series`) in [%(raw_from)s, %(raw_to)s).

    Samples up to %(lookback)s earlier are read only to give counters their first increase.
    Without counters among the series (`counters` false) there is no increase to compute, so
    the rows are the samples themselves: no window function, no sort.
    """
    if not counters:
        return f"""
        SELECT series_id, ts AS t, value AS min, value AS max, value AS sum, 1 AS count, value AS last,
               NULL::float8 AS increase
        FROM monitoring_sample
        WHERE series_id = {series} AND ts >= %(raw_from)s AND ts < %(raw_to)s
    """
    return f"""
        SELECT series_id, ts AS t, value AS min, value AS max, value AS sum, 1 AS count, value AS last,
               CASE WHEN NOT (series_id = ANY(%(counters)s)) THEN NULL
                    WHEN d IS NULL THEN 0 WHEN d < 0 THEN value ELSE d END AS increase
        FROM (
            SELECT series_id, ts, value, value - lag(value) OVER (PARTITION BY series_id ORDER BY ts) AS d
            FROM monitoring_sample
            WHERE series_id = {series} AND ts >= %(raw_from)s - %(lookback)s AND ts < %(raw_to)s
        ) x
        WHERE ts >= %(raw_from)s
    """


def rows_sql(level: str, counters: bool = True) -> str:
    """Return the SELECT producing uniform rows for a level (raw tail included for rollups).

    `counters` false: none of the series is a counter (cheaper raw rows, see _raw_rows_sql).
    """
    if level == RAW:
        return _raw_rows_sql(counters)
    table = LEVEL_TABLES[level]
    return f"""
        SELECT series_id, bucket AS t, min, max, sum, count, last, increase
        FROM {table}
        WHERE series_id = ANY(%(ids)s) AND bucket >= %(start)s AND bucket < %(rollup_to)s
        UNION ALL
        {_tail_rows_sql(level, counters)}
    """


def _tail_rows_sql(level: str, counters: bool, series: str = "ANY(%(ids)s)") -> str:
    """Uniform rows of the rollup level's buckets after %(rollup_to)s, aggregated from raw samples
    of %(ids)s (or `series`)."""
    width = LEVEL_SECONDS[level]
    return f"""
        SELECT series_id, date_bin(make_interval(secs => {width}), t, 'epoch'::timestamptz) AS t,
               min(min) AS min, max(max) AS max, sum(sum) AS sum, sum(count)::int AS count,
               (array_agg(last ORDER BY t DESC))[1] AS last, sum(increase) AS increase
        FROM ({_raw_rows_sql(counters, series)}) raw
        GROUP BY 1, 2
    """


def row_params(level: str, series: list[SeriesInfo], start: datetime, end: datetime) -> dict[str, object]:
    """Return the parameters of rows_sql: where rollups stop and raw reading takes over."""
    ids = [s.id for s in series]
    counters = [s.id for s in series if s.kind == Series.COUNTER]
    params: dict[str, object] = {
        "ids": ids,
        "counters": counters,
        "start": start,
        "end": end,
        "lookback": COUNTER_LOOKBACK if counters else timedelta(0),
    }
    if level == RAW:
        params.update(raw_from=start, raw_to=end)
        return params
    done = done_until(level) or start
    # Buckets before `done` come from the rollup table; the rest from raw, aligned to the bucket width.
    width = LEVEL_SECONDS[level]
    aligned = datetime.fromtimestamp(math.floor(done.timestamp() / width) * width, tz=done.tzinfo)
    rollup_to = min(max(aligned, start), end)
    params.update(rollup_to=rollup_to, raw_from=rollup_to, raw_to=end)
    return params


def group_key(labels: dict[str, str], by: list[str]) -> tuple[str, ...]:
    return tuple(labels.get(name, "") for name in by)


def run_query(
    metric: str,
    matchers: list[Matcher],
    start: datetime,
    end: datetime,
    step: int,
    agg: str,
    by: list[str] | None = None,
    json_points: bool = False,
) -> QueryResult:
    """Run a query and return its series with points [[unix seconds, value], ...].

    `json_points`: each series' points as one ``orjson.Fragment`` holding that list as JSON
    text, built by Postgres, for a caller that only encodes them (the API): no Python object per
    point. Non-finite values, which JSON cannot hold, are left out then.
    """
    if agg not in _AGG_SQL:
        raise QueryError("agg", f"{agg!r} is not one of {', '.join(AGGREGATIONS)}")
    check_points(start, end, step)
    # Percentiles need the distribution: rollups only give them approximately, so ignore the step.
    level = choose_level(start, end, 0 if agg in PERCENTILES else step)
    if agg not in PERCENTILES:  # a percentile of 5-minute averages would be coarser still
        level = finer_level(level, step)
    width = LEVEL_SECONDS.get(level, 0)
    if width and step % width:
        # A step that is not a whole number of rollup buckets would put one bucket in some
        # steps and two in others (a steady rate would alternate); use the next whole multiple.
        step = (step // width + 1) * width
    result = QueryResult(metric, agg, start, end, step, level)
    series = select_series(metric, matchers)
    if not series:
        return result
    if agg == "rate" and not any(s.kind == Series.COUNTER for s in series):
        raise QueryError("agg", f"rate needs a counter; {metric} is a gauge")
    groups, members = _groups(series, by)
    params = row_params(level, series, start, end)
    params.update(
        rate_seconds=max(step, LEVEL_SECONDS.get(level, 0)),
        step=step,
        gsid=[sid for sid, _ in members],
        gid=[gid for _, gid in members],
    )
    counters = any(s.kind == Series.COUNTER for s in series)
    bucket = (
        "extract(epoch FROM date_bin(make_interval(secs => %(step)s), r.t, 'epoch'::timestamptz))::bigint"
    )
    group_of = dict(members)
    if PER_SERIES_PATH and len(set(group_of.values())) == len(group_of):
        # One series per group (no `by`, or a `by` that splits every series): each series'
        # points from its own rows (``_per_series_sql``), no sort of every row of the range.
        direct = bool(width) and step == width and agg in _ROW_SQL
        sql = _per_series_sql(
            level, counters, _ROW_SQL[agg] if direct else _AGG_SQL[agg], direct, json_points
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        if json_points:
            found = {
                sid: orjson.Fragment("[" + ",".join(p for p in (head, rest) if p) + "]")
                for sid, head, rest in rows
                if head or rest
            }
        else:
            found = {
                sid: list(map(list, zip([*(hb or ()), *(tb or ())], [*(hv or ()), *(tv or ())], strict=True)))
                for sid, hb, hv, tb, tv in rows
                if hb or tb
            }
        result.series = [
            {"labels": labels, "points": found[sid]}
            for (sid, _), labels in zip(members, groups, strict=True)
            if sid in found
        ]
        return result
    per_bucket = f"""
            SELECT g.gid AS k, {bucket} AS b, ({_AGG_SQL[agg]})::float8 AS v
            FROM ({rows_sql(level, counters)}) r
            JOIN unnest(%(gsid)s::bigint[], %(gid)s::int[]) AS g(sid, gid) ON g.sid = r.series_id
            GROUP BY 1, 2
        """
    group_of = {gid: gid for gid in group_of.values()}
    # One row per group with its points as two arrays: far fewer Python objects than a row per point.
    sql = f"""
        SELECT k, array_agg(b ORDER BY b), array_agg(v ORDER BY b)
        FROM ({per_bucket}) x WHERE v IS NOT NULL{_FINITE if json_points else ""} GROUP BY k
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    points: dict[int, list[list[float]]] = {
        group_of[key]: list(map(list, zip(buckets, values, strict=True))) for key, buckets, values in rows
    }
    result.series = [
        {"labels": labels, "points": points.get(gid, [])}
        for gid, labels in enumerate(groups)
        if gid in points
    ]
    return result


def _per_series_sql(level: str, counters: bool, value: str, direct: bool, json_points: bool) -> str:
    """Each series' points in two ordered parts: (id, part 1, part 2), a part being the JSON text
    of its points (`json_points`) or their buckets and values as two arrays; NULL when empty.

    Per series (``unnest(ids) CROSS JOIN LATERAL``), an index scan of its rows in time order is
    aggregated per step, a few hundred rows at a time, instead of sorting every row of the range
    together. The rows: its rollups, then its buckets after %(rollup_to)s aggregated from its
    raw samples (``_tail_rows_sql``); or its raw samples. `direct`: the step is one rollup
    bucket and each row is a point (`value` is then a ``_ROW_SQL`` expression, otherwise an
    ``_AGG_SQL`` one): part 1 comes from the rollup table in index order, part 2 from the tail,
    computed once for every series and joined by id (they share no bucket), and nothing is
    sorted. Otherwise part 1 holds every point and part 2 is NULL.
    """
    # date_part (float8), not extract (numeric since Postgres 14): a bucket is whole seconds, and
    # numeric arithmetic on every row cost about a sixth of the statement.
    if json_points:
        out, keep, empty = (
            "string_agg('[' || b || ',' || v || ']', ','{order}) AS j",
            f"v IS NOT NULL{_FINITE}",
            "NULL",
        )
        tail_columns = "tp.j"
    else:
        out, keep, empty = "array_agg(b{order}) AS b, array_agg(v{order}) AS v", "v IS NOT NULL", "NULL, NULL"
        tail_columns = "tp.b, tp.v"
    # The per-series aggregates take the points in their subquery's order (each is ordered,
    # nothing is joined below the aggregate): an ORDER BY inside them cost a sort per series, a
    # fifth of the statement. test_per_series_path_answers_what_the_aggregating_path_does checks
    # the order.
    unordered = out.format(order="")
    if direct:
        # Part 1 from the rollup table in index order; part 2, the tail's buckets, for every
        # series at once (a few rows each) and joined by series id.
        table = LEVEL_TABLES[level]
        return f"""
            WITH tail AS MATERIALIZED ({_tail_rows_sql(level, counters)}),
            tail_points AS (
                SELECT series_id, {out.format(order=" ORDER BY b")} FROM (
                    SELECT series_id, date_part('epoch', t)::bigint AS b, ({value})::float8 AS v FROM tail
                ) x WHERE {keep} GROUP BY series_id
            )
            SELECT g.id, p.*, {tail_columns}
            FROM unnest(%(ids)s::bigint[]) AS g(id)
            CROSS JOIN LATERAL (
                SELECT {unordered} FROM (
                    SELECT date_part('epoch', bucket)::bigint AS b, ({value})::float8 AS v FROM {table}
                    WHERE series_id = g.id AND bucket >= %(start)s AND bucket < %(rollup_to)s ORDER BY bucket
                ) x WHERE {keep}
            ) p
            LEFT JOIN tail_points tp ON tp.series_id = g.id
        """
    if level == RAW:
        source = _raw_rows_sql(counters, "g.id")
    else:  # the series' rollups, then its own tail (an index scan of a few minutes of samples)
        source = f"""
            SELECT series_id, bucket AS t, min, max, sum, count, last, increase FROM {LEVEL_TABLES[level]}
            WHERE series_id = g.id AND bucket >= %(start)s AND bucket < %(rollup_to)s
            UNION ALL
            {_tail_rows_sql(level, counters, "g.id")}
        """
    bucket = (
        "date_part('epoch', date_bin(make_interval(secs => %(step)s), r.t, 'epoch'::timestamptz))::bigint"
    )
    return f"""
        SELECT g.id, p.*, {empty} FROM unnest(%(ids)s::bigint[]) AS g(id)
        CROSS JOIN LATERAL (
            SELECT {unordered} FROM (
                SELECT {bucket} AS b, ({value})::float8 AS v FROM ({source}) r GROUP BY 1 ORDER BY 1
            ) x WHERE {keep}
        ) p
    """


def _groups(series: list[SeriesInfo], by: list[str] | None) -> tuple[list[dict], list[tuple[int, int]]]:
    """Map each series to a group: one group per series without `by`, per label values with it."""
    if not by:
        return [dict(s.labels) for s in series], [(s.id, i) for i, s in enumerate(series)]
    index: dict[tuple[str, ...], int] = {}
    groups: list[dict] = []
    members = []
    for s in series:
        key = group_key(s.labels, by)
        if key not in index:
            index[key] = len(groups)
            groups.append(dict(zip(by, key, strict=True)))
        members.append((s.id, index[key]))
    return groups, members
