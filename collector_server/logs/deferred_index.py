"""The GIN indexes of logs (trigram on message, jsonb_path_ops on attrs), built off the ingest path.

Maintaining them row by row was most of the database's ingest work (the trigram index about
12 us of 28 us a row, the attrs index a few more). So since migration
``logs/0004_logs_speed_deferred_gin`` the parent table has neither; each day partition gets, per
kind (``trgm``, ``attrs``):

- while its day is open: one partial index per closed hour,
  ``<partition>_<kind>_hHH ... WHERE ts >= 'HH:00' AND ts < 'HH+1:00'``, built once the hour is over;
- once its day is over: one index on the whole partition, ``<partition>_<kind>``, after which the
  hourly ones are dropped.

Records that arrive late for an hour or day already indexed are added to its index by Postgres
as usual (a partial index covers every row within its bounds), so nothing is ever missing from
an index once it exists. Only the open hour (and an hour whose build has not run yet) has no
GIN index: a search reads it through the primary key's time range, at most one hour of records
(collector_server/logs/search.py queries hour by hour where the day has no whole-day indexes, so
that Postgres can use each partial index).

``build_closed()`` runs every 120 s as a maintenance job (alerting_worker/schedule.py). Builds use
CREATE INDEX CONCURRENTLY, which does not block ingest; one interrupted leaves an invalid index,
which the next run drops and builds again; an advisory lock keeps two runs from overlapping.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection

from collector_server.logs.models import LOGS_PARTITIONS

log = logging.getLogger(__name__)

GRACE = timedelta(seconds=60)  # build an hour's index this long after the hour ends
KINDS = {
    "trgm": "USING gin (message gin_trgm_ops) WITH (gin_pending_list_limit = 65536)",
    "attrs": "USING gin (attrs jsonb_path_ops) WITH (gin_pending_list_limit = 65536)",
}
OPS = KINDS["trgm"]
_NAME = re.compile(r"^(?P<table>.+)_(?P<kind>trgm|attrs)(?:_h(?P<hour>\d\d))?$")
LOCK = "fleetwatch_logs_deferred_index"
_PARTITION = re.compile(rf"^{LOGS_PARTITIONS.table}_p(\d{{8}})$")


@dataclass(frozen=True)
class Partition:
    """One day partition of logs_entry and the deferred indexes it holds (valid ones)."""

    name: str
    day: date
    whole: frozenset[str] = frozenset()  # kinds with an index on the whole partition
    kind_hours: dict[str, frozenset[int]] = field(default_factory=dict)  # kind -> hours with a partial index

    @property
    def start(self) -> datetime:
        return datetime.combine(self.day, time(0), tzinfo=UTC)

    @property
    def whole_day(self) -> bool:
        """Every kind has its whole-day index."""
        return self.whole == frozenset(KINDS)

    @property
    def hours(self) -> frozenset[int]:
        """Hours where every kind has its partial index."""
        return frozenset(range(24)).intersection(*(self.kind_hours.get(kind, frozenset()) for kind in KINDS))


def day_index(partition: str, kind: str = "trgm") -> str:
    return f"{partition}_{kind}"


def hour_index(partition: str, hour: int, kind: str = "trgm") -> str:
    return f"{partition}_{kind}_h{hour:02d}"


def hour_bounds(day: date, hour: int) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=UTC) + timedelta(hours=hour)
    return start, start + timedelta(hours=1)


def sql_time(moment: datetime) -> str:
    """A timestamptz literal (from a datetime this module computed, never from user input)."""
    return f"'{moment.astimezone(UTC).isoformat()}'::timestamptz"


def _catalog() -> list[tuple[str, str | None, bool | None]]:
    """(partition, index or None, valid) for every logs_entry partition and each of its indexes."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.relname, c.relname, i.indisvalid FROM pg_inherits h "
            "JOIN pg_class t ON t.oid = h.inhrelid LEFT JOIN pg_index i ON i.indrelid = t.oid "
            "LEFT JOIN pg_class c ON c.oid = i.indexrelid WHERE h.inhparent = 'logs_entry'::regclass"
        )
        return cursor.fetchall()


def _deferred(rows: list[tuple[str, str | None, bool | None]]) -> list[tuple[str, str, bool]]:
    out = []
    for table, index, valid in rows:
        match = _NAME.match(index or "")
        if match and match.group("table") == table:
            out.append((table, index, bool(valid)))
    return out


def _partition_indexes() -> list[tuple[str, str, bool]]:
    """(partition, index, valid) of every deferred index on a logs_entry partition."""
    return _deferred(_catalog())


def state() -> list[Partition]:
    """Every logs_entry partition, oldest first, with the deferred indexes it holds (valid ones).

    One catalog query (searches call this once per sparse search).
    """
    rows = _catalog()
    valid = {index for _, index, ok in _deferred(rows) if ok}
    days = {}
    for table, _, _ in rows:
        match = _PARTITION.match(table)
        if match:
            days[table] = datetime.strptime(match.group(1), "%Y%m%d").date()
    out = []
    for name, day in sorted(days.items(), key=lambda item: item[1]):
        whole = frozenset(kind for kind in KINDS if day_index(name, kind) in valid)
        kind_hours = {
            kind: frozenset(h for h in range(24) if hour_index(name, h, kind) in valid) for kind in KINDS
        }
        out.append(Partition(name, day, whole, kind_hours))
    return out


def index_names() -> list[str]:
    """Every deferred index (hourly and whole-day, valid or not) on the logs_entry partitions."""
    return [index for _, index, _ in _partition_indexes()]


def invalid_indexes() -> list[str]:
    return [index for _, index, ok in _partition_indexes() if not ok]


def _execute(statement: str) -> None:
    # CONCURRENTLY cannot run inside a transaction block (tests run inside one).
    if connection.in_atomic_block:
        statement = statement.replace(" CONCURRENTLY", "")
    with connection.cursor() as cursor:
        cursor.execute(statement)


def build_closed(now: datetime | None = None) -> dict[str, list[str]]:
    """Build the indexes of every closed hour and day that lacks one; drop superseded ones."""
    now = now or datetime.now(UTC)
    with connection.cursor() as cursor:
        # One run at a time: a second one would take the first's build in progress for a failed one.
        cursor.execute("SELECT pg_try_advisory_lock(hashtext(%s))", [LOCK])
        if not cursor.fetchone()[0]:
            return {"built": [], "dropped": [], "skipped": ["another run holds the lock"]}
    try:
        return _build_closed(now)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", [LOCK])


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
        log.info("log GIN indexes: built %s, dropped %s", built, dropped)
    return {"built": built, "dropped": dropped}


def plan(now: datetime) -> tuple[list[tuple[str, str]], list[str]]:
    """What is due at `now`: ([(index, CREATE INDEX CONCURRENTLY ...)], [hourly index to drop]).

    A closed day without a whole-day index gets it, and its hourly indexes of that kind are
    dropped once it has it; an open day gets the index of each hour over (plus GRACE) that has none.
    """
    creates: list[tuple[str, str]] = []
    drops: list[str] = []
    for part in state():
        day_over = part.start + timedelta(days=1) + GRACE <= now
        for kind, ops in KINDS.items():
            hours = part.kind_hours.get(kind, frozenset())
            if day_over and kind not in part.whole:
                name = day_index(part.name, kind)
                creates.append(
                    (name, f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "{part.name}" {ops}')
                )
            if day_over or kind in part.whole:
                # Dropped after the whole-day index is built (creates run first; a failed one raises).
                drops.extend(hour_index(part.name, hour, kind) for hour in sorted(hours))
                continue
            for hour in range(24):
                start, end = hour_bounds(part.day, hour)
                if end + GRACE > now or hour in hours:
                    continue
                name = hour_index(part.name, hour, kind)
                creates.append(
                    (
                        name,
                        f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "{part.name}" '
                        f"{ops} WHERE ts >= {sql_time(start)} AND ts < {sql_time(end)}",
                    )
                )
    return creates, drops
