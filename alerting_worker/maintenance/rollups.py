"""Roll raw samples up into 1-minute buckets, and 1-minute buckets into 5-minute and 1-hour buckets.

Each run recomputes a window that overlaps the previous one (late samples are folded
in) and upserts, so running twice, or on two workers at once, gives the same rows.
Counter increases are reset-aware: a sample lower than the one before it means the
counter restarted, and its whole value counts as increase. Each bucket also keeps its edges
(first sample's time and value, last sample's time, Prometheus' reset corrections): the
PromQL engine computes exact rate/increase/delta over windows of whole buckets from them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import connection, transaction

from alerting_worker.ingest import rollup_marks
from collector_server.monitoring import partitions
from collector_server.monitoring.models import RollupState
from collector_server.prometheus_api.promql import results_cache, rollup_blocks
from collector_server.redis_conn import get_redis

LATE_TOLERANCE = timedelta(minutes=5)
MAX_SPAN = timedelta(hours=6)
MINUTE = timedelta(minutes=1)
FIVE_MINUTES = timedelta(minutes=5)
HOUR = timedelta(hours=1)
COUNTER_LOOKBACK = timedelta(minutes=10)
FIRST_RUN_SPAN = timedelta(hours=2)
ROLLUP_LOCK = 0x5E11_0001

ROLLUP_1M_SQL = """
INSERT INTO monitoring_rollup_1m (series_id, bucket, min, max, sum, count, last, increase,
                                  first_ts, first, last_ts, resets, first_reset)
SELECT x.series_id, date_trunc('minute', x.ts) AS bucket, min(x.value), max(x.value), sum(x.value),
       count(*), (array_agg(x.value ORDER BY x.ts DESC))[1],
       CASE WHEN s.kind = 'counter' THEN
            sum(CASE WHEN x.delta IS NULL THEN 0 WHEN x.delta < 0 THEN x.value ELSE x.delta END)
       END,
       min(x.ts), (array_agg(x.value ORDER BY x.ts))[1], max(x.ts), sum(x.reset),
       (array_agg(x.reset ORDER BY x.ts))[1]
FROM (
    SELECT series_id, ts, value, value - lag(value) OVER w AS delta,
           CASE WHEN value < lag(value) OVER w THEN lag(value) OVER w ELSE 0 END AS reset
    FROM monitoring_sample WHERE ts >= %(lookback)s AND ts < %(end)s
    WINDOW w AS (PARTITION BY series_id ORDER BY ts)
) x
JOIN monitoring_series s ON s.id = x.series_id
WHERE x.ts >= %(start)s
GROUP BY x.series_id, bucket, s.kind
ON CONFLICT (series_id, bucket) DO UPDATE SET
    min = EXCLUDED.min, max = EXCLUDED.max, sum = EXCLUDED.sum, count = EXCLUDED.count,
    last = EXCLUDED.last, increase = EXCLUDED.increase, first_ts = EXCLUDED.first_ts,
    first = EXCLUDED.first, last_ts = EXCLUDED.last_ts, resets = EXCLUDED.resets,
    first_reset = EXCLUDED.first_reset
"""

# 1-hour and 5-minute buckets from the 1-minute ones, edges included (the PromQL engine reads both).
_FROM_MINUTES_SQL = """
INSERT INTO {table} (series_id, bucket, min, max, sum, count, last, increase,
                     first_ts, first, last_ts, resets, first_reset)
SELECT series_id, {bucket} AS wide, min(min), max(max), sum(sum), sum(count),
       (array_agg(last ORDER BY bucket DESC))[1], sum(increase),
       -- Edges only when every minute has them (minutes rolled up before they existed have none).
       CASE WHEN count(first_ts) = count(*) THEN min(first_ts) END,
       CASE WHEN count(first_ts) = count(*) THEN (array_agg(first ORDER BY bucket))[1] END,
       CASE WHEN count(first_ts) = count(*) THEN max(last_ts) END,
       CASE WHEN count(first_ts) = count(*) THEN sum(resets) END,
       CASE WHEN count(first_ts) = count(*) THEN (array_agg(first_reset ORDER BY bucket))[1] END
FROM monitoring_rollup_1m WHERE bucket >= %(start)s AND bucket < %(end)s
GROUP BY series_id, wide
ON CONFLICT (series_id, bucket) DO UPDATE SET
    min = EXCLUDED.min, max = EXCLUDED.max, sum = EXCLUDED.sum, count = EXCLUDED.count,
    last = EXCLUDED.last, increase = EXCLUDED.increase, first_ts = EXCLUDED.first_ts,
    first = EXCLUDED.first, last_ts = EXCLUDED.last_ts, resets = EXCLUDED.resets,
    first_reset = EXCLUDED.first_reset
"""
ROLLUP_1H_SQL = _FROM_MINUTES_SQL.format(table="monitoring_rollup_1h", bucket="date_trunc('hour', bucket)")
ROLLUP_5M_SQL = _FROM_MINUTES_SQL.format(
    table="monitoring_rollup_5m", bucket="date_bin('5 minutes', bucket, 'epoch'::timestamptz)"
)


def _floor(moment: datetime, unit: timedelta) -> datetime:
    seconds = int(unit.total_seconds())
    return datetime.fromtimestamp(int(moment.timestamp()) // seconds * seconds, UTC)


def rollup_minutes(now: datetime | None = None) -> dict[str, str | int]:
    """Compute 1-minute rollups for every complete minute since the last run (minus a late margin).

    A run covers at most MAX_SPAN, so a catch-up after an outage advances in bounded steps
    that each fit the job timeout. Late samples (marked by ingest) are rolled up in a
    second pass from the oldest of them.
    """
    now = now or datetime.now(UTC)
    client = get_redis()
    state = RollupState.objects.filter(level="1m").first()
    floor_now = _floor(now, MINUTE)
    start = (state.done_until - LATE_TOLERANCE) if state else floor_now - FIRST_RUN_SPAN
    end = min(floor_now, start + MAX_SPAN)
    late = rollup_marks.take_late(client, "1m")
    late_range = None
    if late is not None:
        late_start = _floor(datetime.fromtimestamp(late, UTC), MINUTE)
        if late_start < start:
            late_range = (late_start, min(start, late_start + MAX_SPAN))
    try:
        _ensure_rollup_partitions(min(start, late_range[0]) if late_range else start, end)
        with transaction.atomic():
            if not _try_lock(ROLLUP_LOCK):
                raise _Busy
            rows = _roll_minutes(start, end)
            if late_range:
                rows += _roll_minutes(*late_range)
            RollupState.objects.update_or_create(level="1m", defaults={"done_until": end})
            # Blocks change with their buckets, in this transaction.
            changed = [(start, end), *([late_range] if late_range else [])]
            rollup_blocks.refresh("1m", changed, end, previous=state.done_until if state else None)
    except _Busy:
        _give_back(client, late)
        return {"skipped": "another worker is rolling up"}
    except Exception:
        _give_back(client, late)
        raise
    if late_range:
        # Old buckets changed: cached PromQL blocks too. A failed bump keeps the late mark, so
        # the next run rolls the range up again and bumps again (nothing stale kept for the TTL).
        if not results_cache.bump_generation(client):
            _give_back(client, late)
        if late_range[1] < start:  # more late data than one run covers: continue next run
            rollup_marks.mark_late(client, late_range[1].timestamp(), "1m")
        rollup_marks.mark_late(client, late_range[0].timestamp(), "1h")
        rollup_marks.mark_late(client, late_range[0].timestamp(), "5m")
    return {"level": "1m", "start": start.isoformat(), "end": end.isoformat(), "rows": rows,
            "late_from": late_range[0].isoformat() if late_range else ""}  # fmt: skip


def _roll_minutes(start: datetime, end: datetime) -> int:
    with connection.cursor() as cursor:
        cursor.execute(ROLLUP_1M_SQL, {"lookback": start - COUNTER_LOOKBACK, "start": start, "end": end})
        return cursor.rowcount


def rollup_hours(now: datetime | None = None) -> dict[str, str | int]:
    """Compute 1-hour rollups from 1-minute rollups, the current (partial) hour included.

    Never past what the 1-minute level has computed: an hour rolled up from minutes that
    are not there yet would stay empty.
    """
    return _rollup_from_minutes("1h", HOUR, ROLLUP_1H_SQL, ROLLUP_LOCK + 1, now)


def rollup_five_minutes(now: datetime | None = None) -> dict[str, str | int]:
    """Compute 5-minute rollups from 1-minute rollups, as rollup_hours does for hours."""
    return _rollup_from_minutes("5m", FIVE_MINUTES, ROLLUP_5M_SQL, ROLLUP_LOCK + 2, now)


def _rollup_from_minutes(
    level: str, width: timedelta, sql: str, lock: int, now: datetime | None
) -> dict[str, str | int]:
    now = now or datetime.now(UTC)
    minutes = RollupState.objects.filter(level="1m").first()
    if minutes is None:
        return {"skipped": "no 1-minute rollups yet"}
    client = get_redis()
    state = RollupState.objects.filter(level=level).first()
    end = min(_floor(now, MINUTE), minutes.done_until)
    since = state.done_until if state else end - FIRST_RUN_SPAN
    start = _floor(since - LATE_TOLERANCE, width)
    late = rollup_marks.take_late(client, level)
    if late is not None:
        start = min(start, _floor(datetime.fromtimestamp(late, UTC), width))
    try:
        _ensure_rollup_partitions(start, end)
        with transaction.atomic():
            if not _try_lock(lock):
                raise _Busy
            with connection.cursor() as cursor:
                cursor.execute(sql, {"start": start, "end": end})
                rows = cursor.rowcount
            RollupState.objects.update_or_create(level=level, defaults={"done_until": end})
            rollup_blocks.refresh(level, [(start, end)], end, previous=state.done_until if state else None)
    except _Busy:
        _give_back(client, late, level)
        return {"skipped": "another worker is rolling up"}
    except Exception:
        _give_back(client, late, level)
        raise
    if late is not None and not results_cache.bump_generation(client):
        _give_back(client, late, level)  # old buckets changed: the next run bumps again
    return {"level": level, "start": start.isoformat(), "end": end.isoformat(), "rows": rows}


def run_rollups(now: datetime | None = None) -> list[dict[str, str | int]]:
    """The periodic job: minutes first, then hours and 5-minute buckets from them."""
    return [rollup_minutes(now), rollup_hours(now), rollup_five_minutes(now)]


class _Busy(Exception):
    """Another worker holds the rollup lock."""


def _give_back(client, late: float | None, level: str = "1m") -> None:
    if late is not None:
        rollup_marks.mark_late(client, late, level)


def _try_lock(key: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [key])
        return bool(cursor.fetchone()[0])


def _ensure_rollup_partitions(start: datetime, end: datetime) -> None:
    day = start.date()
    while day <= end.date():
        partitions.ensure_partition(partitions.ROLLUP_1M, day)
        partitions.ensure_partition(partitions.ROLLUP_1H, day)
        partitions.ensure_partition(partitions.ROLLUP_5M, day)
        partitions.ensure_partition(partitions.BLOCK_1M, day)
        partitions.ensure_partition(partitions.BLOCK_1H, day)
        partitions.ensure_partition(partitions.BLOCK_5M, day)
        day += timedelta(days=1)
