"""Read series and samples for PromQL: selection and window aggregation run in Postgres.

Two reading paths, chosen per selector by `source_level` (the monitoring API's rule, then
rollups only where they give Prometheus' answer):

* raw samples (short ranges, fine steps, or windows that are not whole buckets while raw
  samples are kept): exact Prometheus semantics. Each sample is assigned in SQL to the
  evaluation steps whose window contains it, and Postgres returns one row of statistics per
  (series, step): count, first and last two samples, the sum of counter-reset corrections,
  sum, min, max, variance.
* 1-minute, 5-minute or 1-hour rollups (steps of a minute or more, long ranges; the 5-minute
  ones when steps, windows and offset are whole 5 minutes): rollup_windows.py
  computes the function per series and step from the buckets of each window and their
  edges, with Prometheus' formulas (exact for windows of whole buckets). Functions rollups
  cannot answer (irate, idelta, stddev, quantile...) read raw.

Series selection is the one place a caller's scope (e.g. an organisation) narrows what a
query can see: `select_series(..., scope=...)`.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from django.db import DataError, transaction
from psycopg.abc import Buffer

from collector_server.monitoring import query as monitoring_query
from collector_server.monitoring.query import LEVEL_1H, LEVEL_1M, LEVEL_5M, LEVEL_SECONDS, RAW, SeriesInfo
from collector_server.prometheus_api.promql import rollup_windows
from collector_server.prometheus_api.promql.values import NAME, PromQLError, Steps
from collector_server.replica import read_connection as connection  # the replica on API reads

MAX_SERIES = 20_000
MATCH_OPS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}


@dataclass(frozen=True)
class LabelMatcher:
    name: str
    op: str  # = != =~ !~
    value: str


@dataclass(frozen=True)
class Scope:
    """A SQL condition on monitoring_series (alias s) that every selection must meet."""

    sql: str
    params: tuple[object, ...] = ()


@dataclass
class StoredSeries:
    id: int
    name: str
    kind: str
    labels: dict[str, str]

    @property
    def metric(self) -> dict[str, str]:
        return {NAME: self.name, **self.labels}


@dataclass
class WindowStats:
    """What one window of samples gives the range functions."""

    count: int
    first_t: int
    last_t: int
    first_v: float
    last_v: float
    prev_t: int | None
    prev_v: float | None
    resets: float
    total: float
    low: float
    high: float
    variance: float | None
    quantile: float | None = None


def matcher_sql(matcher: LabelMatcher) -> tuple[str, list[object]]:
    """Return a WHERE fragment on monitoring_series s for one matcher."""
    if matcher.name == NAME:
        column, params = "s.name", []
    else:
        column, params = "coalesce(s.labels ->> %s, '')", [matcher.name]
    if matcher.op in ("=~", "!~"):
        sql_op = "~" if matcher.op == "=~" else "!~"
        return f"{column} {sql_op} %s", [*params, f"^(?:{matcher.value})$"]
    sql_op = "=" if matcher.op == "=" else "<>"
    return f"{column} {sql_op} %s", [*params, matcher.value]


def select_series(matchers: list[LabelMatcher], scope: Scope | None = None) -> list[StoredSeries]:
    """Return the stored series that satisfy every matcher (and the scope)."""
    where, params = ["true"], []
    if scope is not None:
        where.append(scope.sql)
        params.extend(scope.params)
    for matcher in matchers:
        fragment, extra = matcher_sql(matcher)
        where.append(fragment)
        params.extend(extra)
    sql = f"SELECT s.id, s.name, s.kind, s.labels FROM monitoring_series s WHERE {' AND '.join(where)} ORDER BY s.id LIMIT %s"
    rows = fetch(sql, [*params, MAX_SERIES + 1])
    if len(rows) > MAX_SERIES:
        raise PromQLError(
            f"the selector matches more than {MAX_SERIES} series; add label matchers", "execution"
        )
    return [StoredSeries(r[0], r[1], r[2], parse_labels(r[3])) for r in rows]


def parse_labels(value: object) -> dict[str, str]:
    if isinstance(value, str | bytes):
        value = json.loads(value)
    return {k: str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def fetch(sql: str, params: object, local: dict[str, str] | None = None) -> list[tuple]:
    """Run a SELECT in its own transaction, with `local` settings (e.g. work_mem) for it alone."""
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            for name, value in (local or {}).items():
                cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
            cursor.execute(sql, params)
            return cursor.fetchall()
    except DataError as exc:
        if isinstance(exc.__cause__, psycopg.errors.InvalidRegularExpression):
            raise PromQLError(f"invalid regular expression: {str(exc).splitlines()[0]}") from None
        raise


def fetch_bytes(sql: str, params: object, local: dict[str, str] | None = None) -> list[bytes]:
    """The one row of bytea values `sql` selects (b"" for NULL), in binary: no hex to decode.

    Django's cursors bind parameters client-side and so cannot ask for binary results; a
    plain psycopg cursor on the same connection (and transaction) can. Never prepared (psycopg
    would after 5 runs on a persistent connection: transaction poolers break, and partitioned
    tables get generic plans); its errors become django.db errors, as Django's cursors' do.
    """
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        for name, value in (local or {}).items():
            cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
        # The psycopg connection under Django's.
        with connection.wrap_database_errors, psycopg.Cursor(cursor.connection) as binary:
            binary.execute(sql, params, binary=True, prepare=False)
            row = binary.fetchone()
    return [bytes(value) if value is not None else b"" for value in row or ()]


def copy_bytea(sql: str, params: object, local: dict[str, str] | None = None) -> bytearray:
    """The bytea values of the rows `sql` selects (one column, never NULL), concatenated.

    Sent by `COPY (...) TO STDOUT` in binary: tens of megabytes arrive at the socket's speed
    (a 13.5 MB day of packed blocks: ~14 ms), where one aggregated value or row-by-row results
    cost Postgres and libpq two to five times as much (docs/performance.md). COPY takes no
    bound parameters: psycopg merges them into the statement client-side, quoted. The
    stream's framing is read here (no Python object per row but a slice) into one writable
    buffer, which the caller may byte-swap in place.
    """
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        for name, value in (local or {}).items():
            cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
        with (
            connection.wrap_database_errors,
            psycopg.Cursor(cursor.connection) as binary,
            binary.copy(f"COPY ({sql}) TO STDOUT (FORMAT binary)", params) as copy,
        ):
            return _copy_values(copy)


_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_COUNT = struct.Struct(">h")  # a tuple's field count (-1: the trailer)
_LENGTH = struct.Struct(">i")  # a field's length


def _copy_values(messages: Iterable[Buffer]) -> bytearray:
    """The values of a binary COPY stream of one-column tuples, concatenated (one copy).

    Postgres sends each tuple in a message of its own (the header with the first): the
    values are sliced out of the messages as they come, never joined into a stream first.
    """
    pieces: list[memoryview] = []
    header = True
    for message in messages:
        view = memoryview(message)
        position = 0
        if header:
            if bytes(view[:11]) != _COPY_SIGNATURE:
                raise ValueError("not a binary COPY stream")
            position = 19 + _LENGTH.unpack_from(view, 15)[0]  # the header and its extension
            header = False
        while position < len(view):
            fields = _COUNT.unpack_from(view, position)[0]
            if fields == -1:  # the trailer
                position += 2
                continue
            if fields != 1:
                raise ValueError(f"a binary COPY tuple of one field was expected, not {fields}")
            length = _LENGTH.unpack_from(view, position + 2)[0]
            position += 6
            if length < 0 or position + length > len(view):
                raise ValueError(
                    "a binary COPY tuple of one non-NULL value, whole in its message, was expected"
                )
            pieces.append(view[position : position + length])
            position += length
    return bytearray().join(pieces)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def level_for(steps: Steps, window_ms: int) -> str:
    """Raw samples or a rollup level for these steps (the monitoring API's rule).

    A level whose buckets are wider than the window (a 5m rate over 1h buckets) is
    replaced by the next finer one.
    """
    start = _dt(steps.start_ms - window_ms)
    end = _dt(steps.end_ms)
    step_seconds = steps.step_ms // 1000 if steps.count > 1 else 0
    level = monitoring_query.choose_level(start, end, step_seconds)
    if level == LEVEL_1H and window_ms < LEVEL_SECONDS[LEVEL_1H] * 1000:
        level = LEVEL_1M
    if level == LEVEL_1M and window_ms < LEVEL_SECONDS[LEVEL_1M] * 1000:
        level = RAW
    return level


def _infos(series: list[StoredSeries]) -> list[SeriesInfo]:
    return [SeriesInfo(s.id, s.kind, s.labels) for s in series]


def latest_points(
    series: list[StoredSeries], steps: Steps, offset_ms: int, lookback_ms: int, level: str
) -> dict[int, list[float | None]]:
    """Return, per series id, the value an instant selector sees at each step (lookback applied)."""
    if not series:
        return {}
    t0 = steps.start_ms - offset_ms
    hi = steps.end_ms - offset_ms
    lo = t0 - lookback_ms
    if level == RAW:
        source = (
            "SELECT series_id, (extract(epoch FROM ts) * 1000)::bigint AS t, value AS v FROM monitoring_sample "
            "WHERE series_id = ANY(%(ids)s) AND ts >= %(lo_ts)s AND ts <= %(hi_ts)s"
        )
        params: dict[str, object] = {"ids": [s.id for s in series]}
    else:
        width = LEVEL_SECONDS[level] * 1000
        # Each bucket gives its first and last sample (exact when the steps are whole buckets);
        # a bucket without edges (rolled up before they existed) its last value at its end.
        source = f"WITH b AS ({rollup_windows.bucket_rows_sql(level)}) " + (
            "SELECT series_id, ft AS t, fv AS v FROM b WHERE ft IS NOT NULL "
            f"UNION ALL SELECT series_id, coalesce(lt, key + {width}) AS t, lv AS v FROM b"
        )
        params = rollup_windows.bucket_params(level, _infos(series), lo - width, hi)
    params.update(t0=t0, step=steps.step_ms, lo=lo, hi=hi, lo_ts=_dt(lo), hi_ts=_dt(hi))
    sql = f"""
        SELECT DISTINCT ON (series_id, k) series_id, k, t, v FROM (
            SELECT series_id, t, v, greatest(0, ceil((t - %(t0)s)::float8 / %(step)s))::int AS k
            FROM ({source}) p WHERE t >= %(lo)s AND t <= %(hi)s
        ) x ORDER BY series_id, k, t DESC
    """
    rows = fetch(sql, params)
    found: dict[int, dict[int, tuple[int, float]]] = {}
    for sid, k, t, v in rows:
        found.setdefault(sid, {})[k] = (t, v)
    result: dict[int, list[float | None]] = {}
    for sid, by_step in found.items():
        values: list[float | None] = []
        current: tuple[int, float] | None = None
        for k in range(steps.count):
            current = by_step.get(k, current)
            at = t0 + k * steps.step_ms
            values.append(current[1] if current is not None and current[0] >= at - lookback_ms else None)
        result[sid] = values
    return result


def window_stats(
    series: list[StoredSeries], steps: Steps, range_ms: int, offset_ms: int, quantile: float | None = None
) -> dict[int, list[WindowStats | None]]:
    """Return, per series id, the statistics of the raw samples in [t - range, t] at each step."""
    if not series:
        return {}
    rows = _raw_windows(series, steps, range_ms, offset_ms, quantile)
    result: dict[int, list[WindowStats | None]] = {}
    for sid, k, stats in rows:
        result.setdefault(sid, [None] * steps.count)[k] = stats
    return result


def _raw_windows(
    series: list[StoredSeries], steps: Steps, range_ms: int, offset_ms: int, quantile: float | None
) -> list[tuple[int, int, WindowStats]]:
    t0 = steps.start_ms - offset_ms
    hi = steps.end_ms - offset_ms
    lo = t0 - range_ms
    quantile_sql = ", percentile_cont(%(q)s) WITHIN GROUP (ORDER BY s.v)" if quantile is not None else ""
    # Each sample joins the steps whose window [t - range, t] holds it: k from
    # ceil((ts - t0) / step) to floor((ts - t0 + range) / step).
    sql = f"""
        WITH s AS (
            SELECT series_id, (extract(epoch FROM ts) * 1000)::bigint AS t, value AS v,
                   CASE WHEN value < lag(value) OVER w THEN lag(value) OVER w ELSE 0 END AS corr
            FROM monitoring_sample
            WHERE series_id = ANY(%(ids)s) AND ts >= %(lo_ts)s AND ts <= %(hi_ts)s
            WINDOW w AS (PARTITION BY series_id ORDER BY ts)
        )
        SELECT s.series_id, g.k, count(*), min(s.t), max(s.t),
               (array_agg(s.v ORDER BY s.t))[1], (array_agg(s.v ORDER BY s.t DESC))[1:2],
               (array_agg(s.t ORDER BY s.t DESC))[1:2],
               sum(s.corr) - (array_agg(s.corr ORDER BY s.t))[1],
               sum(s.v), min(s.v), max(s.v), var_pop(s.v){quantile_sql}
        FROM s CROSS JOIN LATERAL generate_series(
            greatest(0, ceil((s.t - %(t0)s)::float8 / %(step)s)::bigint),
            least(%(last_k)s, floor((s.t - %(t0)s + %(range)s)::float8 / %(step)s)::bigint)
        ) AS g(k)
        GROUP BY 1, 2
    """
    params = {
        "ids": [s.id for s in series],
        "lo_ts": _dt(lo),
        "hi_ts": _dt(hi),
        "t0": t0,
        "step": steps.step_ms,
        "range": range_ms,
        "last_k": steps.count - 1,
        "q": quantile,
    }
    out = []
    for row in fetch(sql, params):
        sid, k, count, first_t, last_t, first_v, lasts, last_ts, resets, total, low, high, var = row[:13]
        stats = WindowStats(
            count=count,
            first_t=first_t,
            last_t=last_t,
            first_v=first_v,
            last_v=lasts[0],
            prev_t=last_ts[1] if len(last_ts) > 1 else None,
            prev_v=lasts[1] if len(lasts) > 1 else None,
            resets=resets or 0.0,
            total=total,
            low=low,
            high=high,
            variance=var,
            quantile=row[13] if quantile is not None else None,
        )
        out.append((sid, int(k), stats))
    return out


def source_level(steps: Steps, range_ms: int, offset_ms: int, level_window_ms: int | None = None) -> str:
    """Raw samples or a rollup level for windows of `range_ms`, preferring exact answers.

    The monitoring API's rule picks a level (level_for); rollups answer exactly only when
    every window is made of whole buckets (rollup_windows.aligned). Otherwise the query reads
    raw samples while they are kept, and the rollups (approximately) beyond raw retention.
    """
    level = level_for(steps, range_ms if level_window_ms is None else level_window_ms)
    if level == RAW or rollup_windows.aligned(steps, range_ms, offset_ms, level):
        return _five_minutes(level, steps, range_ms, offset_ms, level_window_ms)
    window = max(range_ms, level_window_ms or 0)
    return RAW if rollup_windows.raw_covers(steps, window, offset_ms) else level


def _five_minutes(
    level: str, steps: Steps, range_ms: int, offset_ms: int, level_window_ms: int | None
) -> str:
    """The 5-minute rollups instead of the 1-minute ones when every window is whole 5 minutes.

    A week at a 10-minute step reads 5x fewer rows, with the same (exact) answers; only while
    the 5-minute level keeps up with the 1-minute one (monitoring's finer_level).
    """
    width = LEVEL_SECONDS[LEVEL_5M] * 1000
    if (
        level != LEVEL_1M
        or steps.count < 2
        or max(range_ms, level_window_ms or 0) < width
        or not rollup_windows.aligned(steps, range_ms, offset_ms, LEVEL_5M)
    ):
        return level
    return monitoring_query.finer_level(level, steps.step_ms // 1000)


def rollup_values(
    series: list[StoredSeries], steps: Steps, range_ms: int, offset_ms: int, level: str, function: str
) -> dict[int, list[float | None]]:
    """Return, per series id, `function` over the rollup buckets of each step's window."""
    if not series:
        return {}
    query = rollup_windows.window_query(_infos(series), steps, range_ms, offset_ms, level, function)
    rows = fetch(query.sql, query.params, rollup_windows.QUERY_SETTINGS)
    if query.dense and not rollup_windows.complete(rows, steps):
        query = rollup_windows.anchored_query(_infos(series), steps, range_ms, offset_ms, level, function)
        rows = fetch(query.sql, query.params, rollup_windows.QUERY_SETTINGS)
    result: dict[int, list[float | None]] = {}
    count = steps.count
    for sid, k, value, *step in rows:
        if value is None or (step and not step[0]):  # dense_query: a row for complete() only
            continue
        values = result.get(sid)
        if values is None:
            values = result[sid] = [None] * count
        values[k] = value
    return result


def raw_samples(series: list[StoredSeries], at_ms: int, range_ms: int) -> dict[int, list[tuple[int, float]]]:
    """Return the raw samples of each series in [at - range, at]."""
    if not series:
        return {}
    rows = fetch(
        "SELECT series_id, (extract(epoch FROM ts) * 1000)::bigint, value FROM monitoring_sample "
        "WHERE series_id = ANY(%s) AND ts >= %s AND ts <= %s ORDER BY series_id, ts",
        [[s.id for s in series], _dt(at_ms - range_ms), _dt(at_ms)],
    )
    out: dict[int, list[tuple[int, float]]] = {}
    for sid, t, v in rows:
        out.setdefault(sid, []).append((t, v))
    return out
