"""The trigram index on log messages, built per closed hour and per closed day, off the ingest path.

Maintaining the pg_trgm GIN index row by row was the largest share of the database's ingest work
(about 12 us of 28 us a row). So since migration ``logs/0004_logs_speed_trigram_per_hour`` the
parent table has no trigram index; each day partition gets

- while its day is open: one partial index per closed hour,
  ``<partition>_trgm_hHH ... WHERE ts >= 'HH:00' AND ts < 'HH+1:00'``, built once the hour is over;
- once its day is over: one index on the whole partition, ``<partition>_trgm``, after which the
  hourly ones are dropped.

Records that arrive late for an hour or day already indexed are added to its index by Postgres
as usual (a partial index covers every row within its bounds), so nothing is ever missing from
an index once it exists. Only the open hour (and an hour whose build has not run yet) has no
trigram index: a search reads it through the primary key's time range, at most one hour of records
(collector_server/logs/search.py queries hour by hour where the day has no whole-day index, so
that Postgres can use each partial index).

``build_closed()`` runs every ``INDEX_INTERVAL`` seconds as a maintenance job (alerting_worker/
schedule.py). Builds use CREATE INDEX CONCURRENTLY, which does not block ingest; one interrupted
leaves an invalid index, which the next run drops and builds again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection

from collector_server.logs.models import LOGS_PARTITIONS
from collector_server.monitoring import partitions

log = logging.getLogger(__name__)

INDEX_INTERVAL = 120
GRACE = timedelta(seconds=60)  # build an hour's index this long after the hour ends
OPS = "USING gin (message gin_trgm_ops) WITH (gin_pending_list_limit = 65536)"


@dataclass(frozen=True)
class Partition:
    """One day partition of logs_entry and its trigram indexes."""

    name: str
    day: date
    whole_day: bool  # a valid index on the whole partition
    hours: frozenset[int]  # hours with a valid partial index

    @property
    def start(self) -> datetime:
        return datetime.combine(self.day, time(0), tzinfo=UTC)


def day_index(partition: str) -> str:
    return f"{partition}_trgm"


def hour_index(partition: str, hour: int) -> str:
    return f"{partition}_trgm_h{hour:02d}"


def hour_bounds(day: date, hour: int) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=UTC) + timedelta(hours=hour)
    return start, start + timedelta(hours=1)


def sql_time(moment: datetime) -> str:
    """A timestamptz literal (from a datetime this module computed, never from user input)."""
    return f"'{moment.astimezone(UTC).isoformat()}'::timestamptz"


def state() -> list[Partition]:
    """Every logs_entry partition, oldest first, with the trigram indexes it holds (valid ones)."""
    found = partitions.existing_partitions(LOGS_PARTITIONS)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.relname, c.relname, i.indisvalid FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid "
            "JOIN pg_inherits h ON h.inhrelid = t.oid WHERE h.inhparent = 'logs_entry'::regclass "
            "AND c.relname LIKE '%%\\_trgm%%'"
        )
        indexes = cursor.fetchall()
    out = []
    for name, day in found:
        valid = {index for table, index, ok in indexes if table == name and ok}
        hours = frozenset(h for h in range(24) if hour_index(name, h) in valid)
        out.append(Partition(name, day, day_index(name) in valid, hours))
    return out


def invalid_indexes() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_inherits h ON h.inhrelid = i.indrelid WHERE h.inhparent = 'logs_entry'::regclass "
            "AND NOT i.indisvalid AND c.relname LIKE '%%\\_trgm%%'"
        )
        return [row[0] for row in cursor.fetchall()]


def _execute(statement: str) -> None:
    # CONCURRENTLY cannot run inside a transaction block (tests run inside one).
    if connection.in_atomic_block:
        statement = statement.replace(" CONCURRENTLY", "")
    with connection.cursor() as cursor:
        cursor.execute(statement)


def build_closed(now: datetime | None = None) -> dict[str, list[str]]:
    """Build the trigram indexes of every closed hour and day that lacks one; drop superseded ones."""
    now = now or datetime.now(UTC)
    with connection.cursor() as cursor:
        # One run at a time: a second one would take the first's build in progress for a failed one.
        cursor.execute("SELECT pg_try_advisory_lock(hashtext('fleetwatch_logs_trigram_index'))")
        if not cursor.fetchone()[0]:
            return {"built": [], "dropped": [], "skipped": ["another run holds the lock"]}
    try:
        return _build_closed(now)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtext('fleetwatch_logs_trigram_index'))")


def _build_closed(now: datetime) -> dict[str, list[str]]:
    built: list[str] = []
    dropped: list[str] = []
    for name in invalid_indexes():
        _execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')
        dropped.append(name)
    creates, drops = plan(now)
    for name, statement in creates:
        _execute(statement)
        built.append(name)
    for name in drops:
        _execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')
        dropped.append(name)
    if built or dropped:
        log.info("log trigram indexes: built %s, dropped %s", built, dropped)
    return {"built": built, "dropped": dropped}


def plan(now: datetime) -> tuple[list[tuple[str, str]], list[str]]:
    """What is due at `now`: ([(index, CREATE INDEX CONCURRENTLY ...)], [hourly index to drop]).

    A closed day without its whole-day index gets it, and its hourly indexes are dropped once it
    has it; an open day gets the index of each hour over (plus GRACE) that has none.
    """
    creates: list[tuple[str, str]] = []
    drops: list[str] = []
    for part in state():
        day_over = part.start + timedelta(days=1) + GRACE <= now
        if day_over and not part.whole_day:
            name = day_index(part.name)
            creates.append((name, f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "{part.name}" {OPS}'))
        if day_over or part.whole_day:
            drops.extend(hour_index(part.name, hour) for hour in sorted(part.hours))
            continue
        for hour in range(24):
            start, end = hour_bounds(part.day, hour)
            if end + GRACE > now or hour in part.hours:
                continue
            name = hour_index(part.name, hour)
            creates.append(
                (
                    name,
                    f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "{part.name}" '
                    f"{OPS} WHERE ts >= {sql_time(start)} AND ts < {sql_time(end)}",
                )
            )
    return creates, drops
