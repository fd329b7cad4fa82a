"""Range functions over rollup buckets, computed by Postgres, exactly as Prometheus does.

A rollup bucket (1 minute or 1 hour) keeps, besides count, sum, min, max and last, its edges
(migration monitoring 0004_promql_speed_rollup_edges): the first sample's time and value,
the last sample's time, and Prometheus' counter-reset corrections (`resets`, and
`first_reset` for the bucket's first sample). When every evaluation time t, the offset and
the range are whole multiples of the bucket width, the window [t - range, t] that Prometheus
2.42 reads is exactly the buckets starting in [t - range, t - width] plus the sample at t
itself, which is the first sample of the bucket starting at t when that sample's time is t.
From those, Postgres gets what Prometheus gets from the raw samples: the count, the first
and last sample (time and value), resets, sum, min and max; the function value (rate with
Prometheus' extrapolation, increase, delta, *_over_time) is computed in SQL with Prometheus'
formula. See docs/prometheus.md ("Where the data comes from") for when this path is taken.

One row per series and step comes back: the steps are rows of their own (an "anchor" just
before each evaluation time) merged with the buckets, and a window function over a frame of
`range` milliseconds before each anchor aggregates the buckets it holds. Buckets rolled up
before that migration have no edges: rate and increase over them fall back to the sum of the
buckets' increases divided by the range, as before (approximate).
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
    """SQL giving rows (series_id, k, value): `function` at step k, NULL rows left out."""

    sql: str
    params: dict[str, object]


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


def bucket_rows_sql(level: str) -> str:
    """Rows (series_id, key, cnt, s, lo, hi, lv, inc, ft, fv, lt, rs, frs) of the buckets of %(ids)s.

    key, ft and lt are milliseconds. Buckets the rollup job has not reached yet (from
    %(rollup_to)s) are aggregated here from raw samples, edges included, like the job does.
    """
    table = LEVEL_TABLES[level]
    width = LEVEL_SECONDS[level]
    return f"""
        SELECT series_id, (date_part('epoch', bucket) * 1000)::bigint AS key, count AS cnt, sum AS s,
               min AS lo, max AS hi, last AS lv, increase AS inc,
               (date_part('epoch', first_ts) * 1000)::bigint AS ft, first AS fv,
               (date_part('epoch', last_ts) * 1000)::bigint AS lt, resets AS rs, first_reset AS frs
        FROM {table}
        WHERE series_id = ANY(%(ids)s) AND bucket >= %(start)s AND bucket < %(rollup_to)s
        UNION ALL
        SELECT series_id,
               (date_part('epoch', date_bin(make_interval(secs => {width}), ts, 'epoch'::timestamptz)) * 1000)::bigint,
               count(*)::int, sum(value), min(value), max(value), (array_agg(value ORDER BY ts DESC))[1],
               sum(inc), (date_part('epoch', min(ts)) * 1000)::bigint, (array_agg(value ORDER BY ts))[1],
               (date_part('epoch', max(ts)) * 1000)::bigint, sum(reset), (array_agg(reset ORDER BY ts))[1]
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


def window_query(
    series: list[SeriesInfo], steps: Steps, range_ms: int, offset_ms: int, level: str, function: str
) -> WindowQuery:
    """The SQL of `function` over the buckets of each step's window (see the module docstring)."""
    assert level != RAW
    t0 = steps.start_ms - offset_ms
    hi = steps.end_ms - offset_ms
    params = bucket_params(level, series, t0 - range_ms, hi)
    params.update(t0=t0, step=steps.step_ms, last_k=steps.count - 1, range=range_ms, frame=range_ms - 1)
    # Anchors sit 1 ms before each evaluation time t: the frame [t - range, t - 1] holds the
    # buckets starting in the window, and the row after the anchor is the bucket starting at t.
    sql = f"""
        WITH b AS ({bucket_rows_sql(level)}),
        m AS (
            SELECT series_id, key, cnt, s, lo, hi, inc, rs, ft, fv, frs,
                   ARRAY[key::float8, ft::float8, fv, frs] AS fa, ARRAY[key::float8, lt::float8, lv] AS la
            FROM b
            UNION ALL
            SELECT sid, %(t0)s::bigint + k * %(step)s::bigint - 1, NULL::int, NULL::float8, NULL::float8,
                   NULL::float8, NULL::float8, NULL::float8, NULL::bigint, NULL::float8, NULL::float8,
                   NULL::float8[], NULL::float8[]
            FROM unnest(%(ids)s::bigint[]) AS sid, generate_series(0, %(last_k)s) AS k
        ),
        w AS (
            SELECT series_id, key, cnt IS NULL AS anchor,
                   sum(cnt) OVER f AS n0, sum(s) OVER f AS s0, min(lo) OVER f AS lo0, max(hi) OVER f AS hi0,
                   sum(inc) OVER f AS inc, sum(rs) OVER f AS rs0, count(cnt) OVER f - count(ft) OVER f AS legacy,
                   min(fa) OVER f AS fa, max(la) OVER f AS la,
                   lead(key) OVER o AS nkey, lead(ft) OVER o AS nft, lead(fv) OVER o AS nfv, lead(frs) OVER o AS nfrs
            FROM m
            WINDOW o AS (PARTITION BY series_id ORDER BY key),
                   f AS (o RANGE BETWEEN %(frame)s::bigint PRECEDING AND CURRENT ROW)
        ),
        e AS (
            SELECT series_id, key + 1 AS t, n0, s0, lo0, hi0, inc, rs0, legacy, fa, la, nfv, nfrs,
                   coalesce(nkey = key + 1 AND nft = key + 1, false) AS at_t
            FROM w WHERE anchor AND (n0 > 0 OR (nkey = key + 1 AND nft = key + 1)) OFFSET 0
        ),
        stats AS (
            SELECT series_id, t, legacy, inc,
                   coalesce(n0, 0) + CASE WHEN at_t THEN 1 ELSE 0 END AS n,
                   CASE WHEN fa IS NULL THEN t ELSE fa[2]::bigint END AS ft,
                   CASE WHEN fa IS NULL THEN nfv ELSE fa[3] END AS fv,
                   CASE WHEN at_t THEN t ELSE la[2]::bigint END AS lt,
                   CASE WHEN at_t THEN nfv ELSE la[3] END AS lv,
                   coalesce(rs0 - fa[4], 0) + CASE WHEN at_t AND fa IS NOT NULL THEN nfrs ELSE 0 END AS rs,
                   CASE WHEN at_t THEN coalesce(s0 + nfv, nfv) ELSE s0 END AS s,
                   CASE WHEN at_t THEN least(lo0, nfv) ELSE lo0 END AS lo,
                   CASE WHEN at_t THEN greatest(hi0, nfv) ELSE hi0 END AS hi
            FROM e OFFSET 0
        ),
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
            SELECT series_id, t, ({VALUE_SQL[function]})::float8 AS value FROM shape
        ) v WHERE value IS NOT NULL
    """
    return WindowQuery(sql, params)
