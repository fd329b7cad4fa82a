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
  the buckets change only when late samples are rolled up again. `packed_range(level)` (the
  state rows `<level>:bfrom` and `<level>:block`) says where every block exists; the read path
  uses blocks there and bucket rows elsewhere, and bucket rows alone when the range does not
  reach back to the query's start or there is no state (a database seeded by hand). The
  range starts empty at the seal point on this code's first run (blocks are only ever
  written by it, under the rollup lock: nothing a previous version or the migration left is
  trusted) and grows backwards BACKFILL_SPANS spans a run until the level's oldest partition.
* **Kept equal to the buckets.** The rollup job rebuilds, in the transaction that rewrites
  buckets, every packed block whose span those buckets fall in (late data, re-rolls), and
  builds the newly sealed ones in the transaction that moves the watermark (`refresh`).
  Readers see blocks and buckets change together. A run that finds the level's watermark
  moved by someone else (`<level>:bseen`: a previous version's worker) starts the range again.
* **Retention.** Block tables are partitioned like their level (daily, monthly), spans never
  cross a day, and partitions are dropped with the same retention setting.
* **Size.** 96 bytes a bucket (12 eight-byte fields), stored uncompressed inline (`STORAGE
  PLAIN`: no TOAST, no decompression; a block of 60 records fits a page): on the bench, 132 MB
  beside the 1-minute level's 243 MB of rows and indexes. Migration monitoring
  0008_rollup_blocks creates the tables; the rollup job packs them (the buckets already
  there in steps of BACKFILL_SPANS spans).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import connection

from collector_server.monitoring import partitions
from collector_server.monitoring.models import RollupState
from collector_server.monitoring.query import LEVEL_1H, LEVEL_1M, LEVEL_5M, LEVEL_SECONDS, LEVEL_TABLES

BUCKETS_PER_BLOCK = {LEVEL_1M: 60, LEVEL_5M: 48, LEVEL_1H: 24}  # spans of 1 h, 4 h, 1 day
SPAN_SECONDS = {level: LEVEL_SECONDS[level] * n for level, n in BUCKETS_PER_BLOCK.items()}
BLOCK_TABLES = {level: table.replace("_rollup_", "_block_") for level, table in LEVEL_TABLES.items()}
LATE_TOLERANCE = timedelta(minutes=5)  # the rollup job's overlap (rollups.LATE_TOLERANCE)

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


# The states of a level's blocks (RollupState rows): every block starting in [from, until) exists.
UNTIL, FROM = "block", "bfrom"
# The level's watermark this code last left: another watermark at the next run means a rollup
# ran that did not keep the blocks (a previous version's worker, during a rolling deploy).
SEEN = "bseen"
# Older spans packed per rollup run, newest first, until the level's oldest partition: a
# database rolled up before the blocks existed is packed in bounded steps (a day of 1-minute
# buckets a run), never in one long transaction.
BACKFILL_SPANS = 24


def state_level(level: str, which: str = UNTIL) -> str:
    return f"{level}:{which}"


def packed_range(level: str) -> tuple[datetime, datetime] | None:
    """[from, until): every block of `level` starting in it exists (None: bucket rows only)."""
    if level not in BLOCK_TABLES:
        return None
    names = {state_level(level, UNTIL): UNTIL, state_level(level, FROM): FROM}
    found = {names[s.level]: s.done_until for s in RollupState.objects.filter(level__in=list(names))}
    if len(found) < 2:
        return None
    return found[FROM], found[UNTIL]


def seal_point(level: str, done_until: datetime) -> datetime:
    """Blocks ending at or before this can no longer change but by late data."""
    return floor_span(done_until - LATE_TOLERANCE, level)


def build(level: str, lo: datetime, hi: datetime) -> int:
    """Pack the blocks whose spans start in [lo, hi) (both span-aligned) anew; return how many."""
    if hi <= lo:
        return 0
    _ensure_partitions(level, lo, hi)
    params = {"lo": lo, "hi": hi}
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {BLOCK_TABLES[level]} WHERE start >= %(lo)s AND start < %(hi)s", params)
        cursor.execute(build_sql(level), params)
        return cursor.rowcount


def refresh(
    level: str,
    changed: list[tuple[datetime, datetime]],
    done_until: datetime,
    previous: datetime | None = None,
) -> int:
    """Keep `level`'s blocks equal to its buckets, in the transaction that changed them.

    `changed`: the ranges of buckets this transaction rewrote; `done_until`: the level's new
    watermark; `previous`: its watermark before this run (the rollup job passes it). Blocks in
    the packed range overlapping a changed range are rebuilt, the blocks newly sealed by the
    watermark are built, and the range's end moves to the new seal point; then up to
    BACKFILL_SPANS older spans are packed and its start moves back, until the level's oldest
    partition. The packed range starts empty at the seal point when there is no state (this
    code's first run, a database seeded by hand) and when `previous` is not the watermark
    this code last left (a rollup that did not keep the blocks ran in between: a previous
    version's worker during a rolling deploy): nothing written outside this function's
    transactions is trusted. The caller holds the level's rollup lock.
    """
    if level not in BLOCK_TABLES:
        return 0
    target = seal_point(level, done_until)
    packed = packed_range(level)
    if packed is not None and previous is not None and previous != _seen(level):
        packed = None
    built = 0
    if packed is None:
        since = until = target
        _set_state(level, UNTIL, until)
        _set_state(level, FROM, since)
    else:
        since, until = packed
        ranges = [(max(floor_span(a, level), since), min(ceil_span(b, level), until)) for a, b in changed]
        if target > until:
            ranges.append((until, target))
        for lo, hi in _merged(ranges):
            built += build(level, lo, hi)
        if target > until:
            until = target
            _set_state(level, UNTIL, until)
    _set_state(level, SEEN, done_until)
    oldest = _oldest_partition(level)
    if oldest is not None and since > oldest:
        start = max(oldest, since - timedelta(seconds=SPAN_SECONDS[level] * BACKFILL_SPANS))
        built += build(level, start, since)
        _set_state(level, FROM, start)
    return built


def _seen(level: str) -> datetime | None:
    state = RollupState.objects.filter(level=state_level(level, SEEN)).first()
    return state.done_until if state else None


def _set_state(level: str, which: str, value: datetime) -> None:
    RollupState.objects.update_or_create(level=state_level(level, which), defaults={"done_until": value})


def _oldest_partition(level: str) -> datetime | None:
    """The lower bound of the level's oldest partition (a day or a month: a span boundary)."""
    existing = partitions.existing_partitions(partitions.REGISTRY[LEVEL_TABLES[level]])
    if not existing:
        return None
    return datetime.combine(existing[0][1], datetime.min.time(), tzinfo=UTC)


def _ensure_partitions(level: str, lo: datetime, hi: datetime) -> None:
    """The block partitions of the days in [lo, hi) (old days included: a backfill packs them)."""
    spec = partitions.REGISTRY[BLOCK_TABLES[level]]
    day = lo.date()
    while datetime.combine(day, datetime.min.time(), tzinfo=UTC) < hi:
        partitions.ensure_partition(spec, day)
        day = partitions.next_period(spec, partitions.period_start(spec, day))


def pack_all(level: str, done_until: datetime) -> int:
    """refresh() until the packed range reaches the level's oldest partition (bench, tools)."""
    built = refresh(level, [], done_until)
    oldest = _oldest_partition(level)
    while oldest is not None and (packed := packed_range(level)) is not None and packed[0] > oldest:
        built += refresh(level, [], done_until)
    return built


def _merged(ranges: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for lo, hi in sorted(r for r in ranges if r[1] > r[0]):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out
