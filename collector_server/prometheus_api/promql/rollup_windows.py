"""Range functions over rollup buckets, computed by Postgres, exactly as Prometheus does.

A rollup bucket (1 minute, 5 minutes or 1 hour) keeps, besides count, sum, min, max and last, its edges
(migrations monitoring 0004_promql_speed_rollup_edges, 0006_rollup_5m_edges): the first sample's time and value,
the last sample's time, and Prometheus' counter-reset corrections (`resets`, and
`first_reset` for the bucket's first sample). When every evaluation time t, the offset and
the range are whole multiples of the bucket width, the window [t - range, t] that Prometheus
2.42 reads is exactly the buckets starting in [t - range, t - width] plus the sample at t
itself, which is the first sample of the bucket starting at t when that sample's time is t.
From those, Postgres gets what Prometheus gets from the raw samples: the count, the first
and last sample (time and value), resets, sum, min and max; the function value (rate with
Prometheus' extrapolation, increase, delta, *_over_time) is computed in SQL with Prometheus'
formula. See docs/prometheus.md ("Where the data comes from") for when this path is taken.

Two statements, both giving rows (series_id, k, value): dense_query (one window pass over the
buckets, for windows with no bucket missing: the common case) and anchored_query (a row per
step merged with the buckets and running totals: gaps, series that start or stop within the
range). dense_query's rows say whether it answered every step that has data; if not, the
caller runs anchored_query (complete()). Buckets rolled up before that migration have no
edges: rate and increase over them fall back to the sum of the buckets' increases divided
by the range, as before (approximate).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone

from collector_server.monitoring import query as monitoring_query
from collector_server.monitoring.query import LEVEL_SECONDS, LEVEL_TABLES, RAW, SeriesInfo
from collector_server.prometheus_api.promql.values import Steps

# Sorting a day of 1-minute rollups of a hundred series (and as many anchors) must not spill.
QUERY_WORK_MEM = "128MB"

# Prometheus' extrapolatedRate over one window's statistics (the columns of the last layer of
# window_query), the same float64 operations in the same order as functions.extrapolated.
_EXTRAPOLATED = (
    "CASE WHEN n < 2 THEN NULL ELSE {result} * ((sampled"
    " + CASE WHEN {to_start} < avg * 1.1 THEN {to_start} ELSE avg / 2 END"
    " + CASE WHEN to_end < avg * 1.1 THEN to_end ELSE avg / 2 END) / nullif(sampled, 0)) END"
)
_INCREASE = _EXTRAPOLATED.format(result="counter_change", to_start="counter_to_start")
_DELTA = _EXTRAPOLATED.format(result="change", to_start="to_start")
# Buckets without edges (rolled up before the edges existed): the old, approximate answer.
_LEGACY = "legacy > 0"

# The value of each function from one window's statistics.
VALUE_SQL = {
    "rate": f"CASE WHEN {_LEGACY} THEN inc / range_s ELSE {_INCREASE} / range_s END",
    "increase": f"CASE WHEN {_LEGACY} THEN inc ELSE {_INCREASE} END",
    "delta": f"CASE WHEN {_LEGACY} THEN NULL ELSE {_DELTA} END",
    "avg_over_time": "s / n",
    "sum_over_time": "s",
    "min_over_time": "lo",
    "max_over_time": "hi",
    "count_over_time": "n::float8",
    "last_over_time": "lv",
    "present_over_time": "1.0::float8",
}
# Postgres' JIT compiles these statements for hundreds of milliseconds and gains nothing.
QUERY_SETTINGS = {"work_mem": QUERY_WORK_MEM, "jit": "off"}


@dataclass
class WindowQuery:
    """SQL giving rows (series_id, k, value[, dense, present]): `function` at step k, NULLs left out."""

    sql: str
    params: dict[str, object]
    dense: bool = False  # dense_query: check its rows with complete(), else run anchored_query


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def aligned(steps: Steps, range_ms: int, offset_ms: int, level: str) -> bool:
    """Whether every window is made of whole buckets of `level` (then the answer is exact)."""
    width = LEVEL_SECONDS[level] * 1000
    step = steps.step_ms if steps.count > 1 else width
    return (steps.start_ms - offset_ms) % width == 0 and step % width == 0 and range_ms % width == 0


def raw_covers(steps: Steps, range_ms: int, offset_ms: int) -> bool:
    """Whether raw samples are still kept for the whole of the query's windows."""
    oldest = _dt(steps.start_ms - offset_ms - range_ms)
    return oldest >= timezone.now() - timedelta(days=settings.RAW_RETENTION_DAYS)


def bucket_rows_sql(level: str, epoch_ms: bool = True) -> str:
    """Rows (series_id, key, cnt, s, lo, hi, lv, inc, ft, fv, lt, rs, frs) of the buckets of %(ids)s.

    key, ft and lt are milliseconds (timestamps when `epoch_ms` is false: cheaper to send in
    binary). Buckets the rollup job has not reached yet (from %(rollup_to)s) are aggregated
    here from raw samples, edges included, like the job does.
    """
    return f"{rolled_up_rows_sql(level, epoch_ms)} UNION ALL {raw_bucket_rows_sql(level, epoch_ms)}"


def _ms(expr: str, epoch_ms: bool) -> str:
    return f"(date_part('epoch', {expr}) * 1000)::bigint" if epoch_ms else expr


def rolled_up_rows_sql(level: str, epoch_ms: bool = True) -> str:
    """bucket_rows_sql's rows from the rollup table (before %(rollup_to)s)."""
    return f"""
        SELECT series_id, {_ms("bucket", epoch_ms)} AS key, count AS cnt, sum AS s,
               min AS lo, max AS hi, last AS lv, increase AS inc,
               {_ms("first_ts", epoch_ms)} AS ft, first AS fv,
               {_ms("last_ts", epoch_ms)} AS lt, resets AS rs, first_reset AS frs
        FROM {LEVEL_TABLES[level]}
        WHERE series_id = ANY(%(ids)s) AND bucket >= %(start)s AND bucket < %(rollup_to)s
    """


def raw_bucket_rows_sql(level: str, epoch_ms: bool = True) -> str:
    """bucket_rows_sql's rows aggregated from raw samples (from %(rollup_to)s), as the job does."""
    width = LEVEL_SECONDS[level]
    return f"""
        SELECT series_id,
               {_ms(f"date_bin(make_interval(secs => {width}), ts, 'epoch'::timestamptz)", epoch_ms)} AS key,
               count(*)::int AS cnt, sum(value) AS s, min(value) AS lo, max(value) AS hi,
               (array_agg(value ORDER BY ts DESC))[1] AS lv, sum(inc) AS inc,
               {_ms("min(ts)", epoch_ms)} AS ft, (array_agg(value ORDER BY ts))[1] AS fv,
               {_ms("max(ts)", epoch_ms)} AS lt, sum(reset) AS rs, (array_agg(reset ORDER BY ts))[1] AS frs
        FROM (
            SELECT series_id, ts, value,
                   CASE WHEN NOT (series_id = ANY(%(counters)s)) THEN NULL
                        WHEN lag(value) OVER w IS NULL THEN 0
                        WHEN value < lag(value) OVER w THEN value
                        ELSE value - lag(value) OVER w END AS inc,
                   CASE WHEN value < lag(value) OVER w THEN lag(value) OVER w ELSE 0 END AS reset
            FROM monitoring_sample
            WHERE series_id = ANY(%(ids)s) AND ts >= %(raw_from)s - %(lookback)s AND ts < %(raw_to)s
            WINDOW w AS (PARTITION BY series_id ORDER BY ts)
        ) x
        WHERE ts >= %(raw_from)s
        GROUP BY 1, 2
    """


def bucket_params(level: str, series: list[SeriesInfo], lo_ms: int, hi_ms: int) -> dict[str, object]:
    """Parameters of bucket_rows_sql for the buckets starting in [lo, hi]."""
    width = LEVEL_SECONDS[level] * 1000
    params = monitoring_query.row_params(level, series, _dt((lo_ms // width) * width), _dt(hi_ms + 1))
    params["lookback"] = monitoring_query.COUNTER_LOOKBACK
    return params


def anchored_query(
    series: list[SeriesInfo], steps: Steps, range_ms: int, offset_ms: int, level: str, function: str
) -> WindowQuery:
    """The SQL of `function` over the buckets of each step's window, whatever buckets exist.

    One sorted pass per series computes running totals (samples, buckets, sum, resets,
    increases) and the last bucket seen; a window is the difference between the totals at
    its end (an anchor row at t - 1) and at its start (the anchor of an earlier step when the
    step divides the range, else a row of its own at t - range - 2). The window's first
    bucket is found by its index, the sample at t is the first of the row after the end
    anchor. Only min and max need a sliding frame (they cannot be differenced).
    """
    assert level != RAW
    t0 = steps.start_ms - offset_ms
    hi = steps.end_ms - offset_ms
    params = bucket_params(level, series, t0 - range_ms, hi)
    step = steps.step_ms if steps.count > 1 else max(range_ms, 1)
    shared_starts = range_ms % step == 0
    lag = range_ms // step if shared_starts else 0
    params.update(
        t0=t0, step=step, first_k=-lag, last_k=steps.count - 1, range=range_ms, frame=range_ms - 1, lag=lag
    )
    # Buckets no window reaches (a step longer than the range) are left out before sorting.
    reach = (
        ""
        if step <= range_ms
        else "WHERE (key - (%(t0)s::bigint - %(range)s::bigint)) %% %(step)s::bigint <= %(range)s::bigint"
    )
    starts = (
        "SELECT series_id, k + %(lag)s AS k, c, idx, cs, ci, crs, cl FROM r WHERE kind = 2"
        if shared_starts
        else "SELECT series_id, k, c, idx, cs, ci, crs, cl FROM r WHERE kind = 1"
    )
    start_anchors = (
        ""
        if shared_starts
        else """UNION ALL
            SELECT sid, %(t0)s::bigint + k * %(step)s::bigint - %(range)s::bigint - 2, 1, k, NULL::int,
                   NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::bigint,
                   NULL::float8, NULL::float8, NULL::float8[]
            FROM unnest(%(ids)s::bigint[]) AS sid, generate_series(0, %(last_k)s) AS k"""
    )
    sliding = function in ("min_over_time", "max_over_time")
    frame = (
        "min(lo) OVER f AS lo, max(hi) OVER f AS hi" if sliding else "NULL::float8 AS lo, NULL::float8 AS hi"
    )
    sql = f"""
        WITH b AS (SELECT * FROM ({bucket_rows_sql(level)}) b0 {reach}),
        m AS (
            SELECT series_id, key, 0 AS kind, NULL::int AS k, cnt, s, lo, hi, inc, rs, ft, fv, frs,
                   ARRAY[key::float8, lt::float8, lv] AS la
            FROM b
            UNION ALL
            SELECT sid, %(t0)s::bigint + k * %(step)s::bigint - 1, 2, k, NULL::int, NULL::float8, NULL::float8,
                   NULL::float8, NULL::float8, NULL::float8, NULL::bigint, NULL::float8, NULL::float8,
                   NULL::float8[]
            FROM unnest(%(ids)s::bigint[]) AS sid, generate_series(%(first_k)s, %(last_k)s) AS k
            {start_anchors}
        ),
        r AS (
            SELECT series_id, key, kind, k, ft, fv, frs,
                   sum(cnt) OVER o AS c, count(cnt) OVER o AS idx, sum(s) OVER o AS cs, sum(inc) OVER o AS ci,
                   sum(rs) OVER o AS crs, count(cnt) OVER o - count(ft) OVER o AS cl, max(la) OVER o AS la,
                   lead(key) OVER n AS nkey, lead(ft) OVER n AS nft, lead(fv) OVER n AS nfv,
                   lead(frs) OVER n AS nfrs, {frame}
            FROM m
            WINDOW n AS (PARTITION BY series_id ORDER BY key),
                   o AS (n ROWS UNBOUNDED PRECEDING),
                   f AS (n RANGE BETWEEN %(frame)s::bigint PRECEDING AND CURRENT ROW)
        ),
        ends AS (
            SELECT series_id, k, key + 1 AS t, c, idx, cs, ci, crs, cl, la, nfv, nfrs, lo, hi,
                   coalesce(nkey = key + 1 AND nft = key + 1, false) AS at_t
            FROM r WHERE kind = 2 AND k >= 0
        ),
        starts AS ({starts}),
        stats AS (
            SELECT e.series_id, e.t,
                   coalesce(e.cl, 0) - coalesce(s.cl, 0) AS legacy,
                   coalesce(e.ci - coalesce(s.ci, 0), 0) AS inc,
                   coalesce(e.c - coalesce(s.c, 0), 0) + CASE WHEN e.at_t THEN 1 ELSE 0 END AS n,
                   CASE WHEN f.ft IS NULL AND e.at_t THEN e.t ELSE f.ft END AS ft,
                   CASE WHEN f.ft IS NULL AND e.at_t THEN e.nfv ELSE f.fv END AS fv,
                   CASE WHEN e.at_t THEN e.t ELSE e.la[2]::bigint END AS lt,
                   CASE WHEN e.at_t THEN e.nfv ELSE e.la[3] END AS lv,
                   coalesce(e.crs - coalesce(s.crs, 0) - f.frs, 0)
                       + CASE WHEN e.at_t AND f.series_id IS NOT NULL THEN e.nfrs ELSE 0 END AS rs,
                   CASE WHEN e.at_t THEN coalesce(e.cs - coalesce(s.cs, 0) + e.nfv, e.nfv)
                        ELSE e.cs - coalesce(s.cs, 0) END AS s,
                   CASE WHEN e.at_t THEN least(e.lo, e.nfv) ELSE e.lo END AS lo,
                   CASE WHEN e.at_t THEN greatest(e.hi, e.nfv) ELSE e.hi END AS hi
            FROM ends e
            LEFT JOIN starts s ON s.series_id = e.series_id AND s.k = e.k
            LEFT JOIN r f ON f.kind = 0 AND f.series_id = e.series_id AND f.idx = coalesce(s.idx, 0) + 1
                         AND f.key < e.t
            WHERE e.idx > coalesce(s.idx, 0) OR e.at_t
            OFFSET 0
        ),
        {_value_layers(function)}
    """
    return WindowQuery(sql, params)


# From a window's statistics (a `stats` CTE: series_id, t, legacy, inc, n, ft, fv, lt, lv, rs, s,
# lo, hi) to rows (series_id, k, value).
def _value_layers(function: str) -> str:
    return _VALUE_LAYERS.replace("{value}", VALUE_SQL[function])


_VALUE_LAYERS = """
        edges AS (
            SELECT *, (lt - ft)::float8 / 1000 AS sampled, (ft - (t - %(range)s::bigint))::float8 / 1000 AS to_start,
                   (t - lt)::float8 / 1000 AS to_end, lv - fv AS change, lv - fv + rs AS counter_change,
                   %(range)s::float8 / 1000 AS range_s
            FROM stats OFFSET 0
        ),
        shape AS (
            SELECT *, CASE WHEN n > 1 THEN sampled / (n - 1)::float8 END AS avg,
                   CASE WHEN counter_change > 0 AND fv >= 0 THEN least(to_start, sampled * (fv / counter_change))
                        ELSE to_start END AS counter_to_start
            FROM edges OFFSET 0
        )
        SELECT series_id, (t - %(t0)s::bigint) / %(step)s::bigint AS k, value FROM (
            SELECT series_id, t, ({value})::float8 AS value FROM shape
        ) v WHERE value IS NOT NULL
"""


def dense_query(
    series: list[SeriesInfo], steps: Steps, range_ms: int, offset_ms: int, level: str, function: str
) -> WindowQuery:
    """The SQL of `function` over windows whose every bucket exists (the common case), cheaply.

    One sort of the buckets and one window pass with a ROWS frame of j = range / width
    buckets, evaluated at the bucket just before each evaluation time t: `first_value` gives
    the window's first bucket, `lead` the sample at t, sums the rest. A window is dense when
    its first bucket starts at t - range and every bucket has edges; only dense steps come
    back. Rows carry `dense` (how many steps were dense) and `present` (how many steps have
    any bucket in their window, from the union of the step intervals each bucket reaches):
    when they differ, some window has a gap (or buckets without edges) and the caller runs
    anchored_query instead (complete()).
    """
    assert level != RAW
    width = LEVEL_SECONDS[level] * 1000
    t0 = steps.start_ms - offset_ms
    hi = steps.end_ms - offset_ms
    params = bucket_params(level, series, t0 - range_ms, hi)
    step = steps.step_ms if steps.count > 1 else max(range_ms, width)
    j = range_ms // width
    params.update(t0=t0, hi=hi, step=step, range=range_ms, width=width, last_k=steps.count - 1)
    reach = (
        ""
        if step <= range_ms
        else "WHERE (key - (%(t0)s::bigint - %(range)s::bigint)) %% %(step)s::bigint <= %(range)s::bigint"
    )
    extra = {
        "rate": "sum(rs) OVER f AS rs0",
        "increase": "sum(rs) OVER f AS rs0",
        "sum_over_time": "sum(s) OVER f AS s0",
        "avg_over_time": "sum(s) OVER f AS s0",
        "min_over_time": "min(lo) OVER f AS lo0",
        "max_over_time": "max(hi) OVER f AS hi0",
    }.get(function, "NULL::float8 AS unused")
    rs = "rs0 - frs1 + CASE WHEN at_t THEN nfrs ELSE 0 END" if "AS rs0" in extra else "NULL::float8"
    total = "s0 + CASE WHEN at_t THEN nfv ELSE 0 END" if "AS s0" in extra else "NULL::float8"
    low = "CASE WHEN at_t THEN least(lo0, nfv) ELSE lo0 END" if "AS lo0" in extra else "NULL::float8"
    high = "CASE WHEN at_t THEN greatest(hi0, nfv) ELSE hi0 END" if "AS hi0" in extra else "NULL::float8"
    sql = f"""
        WITH b AS (
            SELECT *, ARRAY[key::float8, ft::float8, fv, frs] AS edges
            FROM ({bucket_rows_sql(level)}) b0 {reach}
        ),
        d0 AS (
            SELECT series_id, key, ft, key + %(width)s::bigint AS t, lt, lv,
                   first_value(edges) OVER f AS fe, lead(edges) OVER f AS ne_,
                   sum(cnt) OVER f AS n0, count(ft) OVER f AS ne, {extra}, lag(key) OVER f AS pkey
            FROM b
            WINDOW f AS (PARTITION BY series_id ORDER BY key ROWS BETWEEN {j - 1} PRECEDING AND CURRENT ROW)
        ),
        d AS (
            SELECT *, fe[1]::bigint AS fkey, fe[2]::bigint AS ft1, fe[3] AS fv1, fe[4] AS frs1,
                   ne_[2]::bigint AS nft, ne_[3] AS nfv, ne_[4] AS nfrs,
                   greatest(0, ceil(((key + CASE WHEN ft = key THEN 0 ELSE %(width)s::bigint END) - %(t0)s::bigint)::float8
                                    / %(step)s::bigint)) AS lo_k,
                   least(%(last_k)s::bigint, floor((key + %(range)s::bigint - %(t0)s::bigint)::float8 / %(step)s::bigint))
                       AS hi_k
            FROM d0
        ),
        x AS (
            SELECT *, coalesce(nft = t, false) AS at_t FROM (
                    SELECT *, t BETWEEN %(t0)s::bigint AND %(hi)s::bigint
                              AND (t - %(t0)s::bigint) %% %(step)s::bigint = 0
                              AND fkey = t - %(range)s::bigint AND ne = {j} AS is_step,
                              greatest(0, hi_k - greatest(lo_k - 1, coalesce(
                                  floor((pkey + %(range)s::bigint - %(t0)s::bigint)::float8 / %(step)s::bigint), -1
                              ))) AS covers
                    FROM d
            ) z WHERE is_step OR covers > 0
        ),
        stats AS (
            SELECT series_id, t, 0 AS legacy, NULL::float8 AS inc,
                   n0 + CASE WHEN at_t THEN 1 ELSE 0 END AS n, ft1 AS ft, fv1 AS fv,
                   CASE WHEN at_t THEN t ELSE lt END AS lt, CASE WHEN at_t THEN nfv ELSE lv END AS lv,
                   {rs} AS rs, {total} AS s, {low} AS lo, {high} AS hi,
                   is_step, covers
            FROM x OFFSET 0
        ),
        {_value_layers(function)}
    """
    # Rows: (series_id, k, value, is_step, covers): the steps' rows (value NULL where the
    # function has none) and the rows that reach steps (for complete()).
    for before, after in (
        ("AS k, value FROM (", "AS k, value, is_step, covers FROM ("),
        ("SELECT series_id, t, (", "SELECT series_id, t, is_step, covers, ("),
        (") v WHERE value IS NOT NULL", ") v"),
    ):
        assert before in sql
        sql = sql.replace(before, after)
    return WindowQuery(sql, params, dense=True)


def window_query(
    series: list[SeriesInfo], steps: Steps, range_ms: int, offset_ms: int, level: str, function: str
) -> WindowQuery:
    """`function` over each step's window: rows (series_id, k, value).

    Windows of whole buckets (aligned) first try dense_query; `complete` tells from its rows
    whether it answered every step of every series that has buckets, else the caller runs
    anchored_query (gaps, series that start or stop within the range, buckets without edges).
    """
    if aligned(steps, range_ms, offset_ms, level):
        return dense_query(series, steps, range_ms, offset_ms, level, function)
    return anchored_query(series, steps, range_ms, offset_ms, level, function)


def complete(rows: list[tuple], steps: Steps) -> bool:
    """Whether dense_query's rows answer every step of every series with buckets."""
    return sum(1 for row in rows if row[3]) == sum(row[4] for row in rows)
