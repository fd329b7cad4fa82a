"""Rollup buckets packed into blocks: one row per series and span of buckets, ready for numpy.

Reading a day of one-minute buckets of a hundred series row by row costs Postgres ~130 ms:
144,000 index entries and heap tuples visited, each turned into a binary record and appended
to the answer (docs/performance.md). Time-series databases store chunks instead (Prometheus'
TSDB, Mimir, TimescaleDB's compressed chunks): here each series' buckets of one block span
(an hour of the 1-minute level: 60 buckets; 4 hours of the 5-minute one: 48; a day of the
hourly one: 24) are kept, once they can no longer change, as one bytea of the very fixed-width binary
records vectorised.py reads. The same day is then 2,400 rows sent as they are by a binary
COPY: ~14 ms, 13.5 MB.

* **Which blocks exist.** A block is built once its span is sealed: wholly before the level's
  watermark (RollupState.done_until) minus the rollup job's overlap (LATE_TOLERANCE), where
  the buckets change only when late samples are rolled up again. `sealed_until(level)` (the
  state row `<level>:block`) says how far every block exists; the read path uses blocks below
  it and bucket rows above it, and bucket rows alone when there is no state (a database
  seeded by hand).
* **Kept equal to the buckets.** The rollup job rebuilds, in the transaction that rewrites
  buckets, every sealed block whose span those buckets fall in (late data, re-rolls), and
  builds the newly sealed ones in the transaction that moves the watermark (`refresh`).
  Readers see blocks and buckets change together.
* **Retention.** Block tables are partitioned like their level (daily, monthly), spans never
  cross a day, and partitions are dropped with the same retention setting.
* **Size.** 96 bytes a bucket (12 eight-byte fields), stored uncompressed inline (`STORAGE
  PLAIN`: no TOAST, no decompression; a block of 60 records fits a page): on the bench, 132 MB
  beside the 1-minute level's 243 MB of rows and indexes. Migration monitoring 0008_rollup_blocks creates the tables and
  packs the buckets already there.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import connection

from collector_server.monitoring.models import RollupState
from collector_server.monitoring.query import LEVEL_1H, LEVEL_1M, LEVEL_5M, LEVEL_SECONDS, LEVEL_TABLES

BUCKETS_PER_BLOCK = {LEVEL_1M: 60, LEVEL_5M: 48, LEVEL_1H: 24}  # spans of 1 h, 4 h, 1 day
SPAN_SECONDS = {level: LEVEL_SECONDS[level] * n for level, n in BUCKETS_PER_BLOCK.items()}
BLOCK_TABLES = {level: table.replace("_rollup_", "_block_") for level, table in LEVEL_TABLES.items()}
LATE_TOLERANCE = timedelta(minutes=5)  # the rollup job's overlap (rollups.LATE_TOLERANCE)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Each record's fields: (name, SQL expression over the bucket's columns, binary type), in
# order. vectorised.py reads the same expressions from bucket rows (record_sql).
RECORD_FIELDS: list[tuple[str, str, str]] = [
    ("sid", "series_id::int8", "i8"),
    ("key", "key", "ts"),
    ("cnt", "cnt::int8", "i8"),
    ("ft", "coalesce(ft, '-infinity'::timestamptz)", "ts"),
    ("fv", "coalesce(fv, 'NaN'::float8)", "f8"),
    ("lt", "coalesce(lt, key)", "ts"),
    ("lv", "coalesce(lv, 'NaN'::float8)", "f8"),
    ("rs", "coalesce(rs, 0)::float8", "f8"),
    ("frs", "coalesce(frs, 0)::float8", "f8"),
    ("s", "coalesce(s, 'NaN'::float8)", "f8"),
    ("lo", "coalesce(lo, 'NaN'::float8)", "f8"),
    ("hi", "coalesce(hi, 'NaN'::float8)", "f8"),
]
_SEND = {"i8": "int8send", "f8": "float8send", "ts": "timestamptz_send"}


def record_sql(fields: list[tuple[str, str, str]]) -> str:
    """One fixed-width big-endian binary record of a bucket row (a bytea expression)."""
    return " || ".join(f"{_SEND[kind]}({expr})" for _, expr, kind in fields)


def _bucket_rows(level: str) -> str:
    """The level's buckets in [%(lo)s, %(hi)s) under the names RECORD_FIELDS use."""
    return f"""
        SELECT series_id, bucket AS key, count AS cnt, sum AS s, min AS lo, max AS hi, last AS lv,
               first_ts AS ft, first AS fv, last_ts AS lt, resets AS rs, first_reset AS frs
        FROM {LEVEL_TABLES[level]} WHERE bucket >= %(lo)s AND bucket < %(hi)s
    """


def build_sql(level: str) -> str:
    """Pack the blocks starting in [%(lo)s, %(hi)s) (span-aligned) from the buckets (none there yet)."""
    table = BLOCK_TABLES[level]
    span = SPAN_SECONDS[level]
    return f"""
        INSERT INTO {table} (series_id, start, records)
        SELECT series_id, date_bin(make_interval(secs => {span}), key, 'epoch'::timestamptz),
               string_agg({record_sql(RECORD_FIELDS)}, ''::bytea ORDER BY key)
        FROM ({_bucket_rows(level)}) b
        GROUP BY 1, 2
    """


def floor_span(moment: datetime, level: str) -> datetime:
    span = SPAN_SECONDS[level]
    return datetime.fromtimestamp(int(moment.timestamp()) // span * span, UTC)


def ceil_span(moment: datetime, level: str) -> datetime:
    span = SPAN_SECONDS[level]
    return datetime.fromtimestamp(-(-int(moment.timestamp()) // span) * span, UTC)


def state_level(level: str) -> str:
    return f"{level}:block"


def sealed_until(level: str) -> datetime | None:
    """Every block of `level` starting before this exists (None: use bucket rows only)."""
    if level not in BLOCK_TABLES:
        return None
    state = RollupState.objects.filter(level=state_level(level)).first()
    return state.done_until if state else None


def seal_point(level: str, done_until: datetime) -> datetime:
    """Blocks ending at or before this can no longer change but by late data."""
    return floor_span(done_until - LATE_TOLERANCE, level)


def build(level: str, lo: datetime, hi: datetime) -> int:
    """Pack the blocks whose spans start in [lo, hi) (both span-aligned) anew; return how many."""
    if hi <= lo:
        return 0
    params = {"lo": lo, "hi": hi}
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {BLOCK_TABLES[level]} WHERE start >= %(lo)s AND start < %(hi)s", params)
        cursor.execute(build_sql(level), params)
        return cursor.rowcount


def refresh(level: str, changed: list[tuple[datetime, datetime]], done_until: datetime) -> int:
    """Keep `level`'s blocks equal to its buckets, in the transaction that changed them.

    `changed`: the ranges of buckets this transaction rewrote; `done_until`: the level's new
    watermark. Sealed blocks overlapping a changed range are rebuilt, the blocks newly sealed
    by the watermark are built, and the state moves to the new seal point. Without a state
    (the first run, a database seeded by hand), every bucket below the seal point is packed
    (one pass over the level's table).
    The caller holds the level's rollup lock.
    """
    if level not in BLOCK_TABLES:
        return 0
    target = seal_point(level, done_until)
    state = RollupState.objects.filter(level=state_level(level)).first()
    if state is None:  # every bucket below the seal point (and no block left from before)
        built = build(level, EPOCH, target)
        RollupState.objects.create(level=state_level(level), done_until=target)
        return built
    sealed = state.done_until
    ranges = [(floor_span(a, level), min(ceil_span(b, level), sealed)) for a, b in changed]
    if target > sealed:
        ranges.append((sealed, target))
    built = 0
    for lo, hi in _merged(ranges):
        built += build(level, lo, hi)
    if target > sealed:
        state.done_until = target
        state.save(update_fields=["done_until"])
    return built


def _merged(ranges: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for lo, hi in sorted(r for r in ranges if r[1] > r[0]):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out
