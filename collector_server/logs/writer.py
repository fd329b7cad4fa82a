"""COPY prepared log rows into logs_entry, creating the day partitions they need."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime

from django.conf import settings
from psycopg import Cursor

from collector_server.logs.models import LOGS_PARTITIONS
from collector_server.logs.records import COLUMNS, SECONDS_PER_DAY, RecordRejected, Row, Window, to_row
from collector_server.monitoring import partitions
from shared.wire import Batch

COPY_SQL = f"COPY logs_entry ({', '.join(COLUMNS)}) FROM STDIN"
INGESTED = "logs_ingested"
REJECTED = "logs_rejected"
TRUNCATED = "logs_truncated"


def current_window() -> Window:
    return Window.now(settings.LOG_RETENTION_DAYS)


def day_of(day_number: int) -> date:
    return datetime.fromtimestamp(day_number * SECONDS_PER_DAY, UTC).date()


def ensure_days(days: Iterable[int]) -> None:
    """Create the logs_entry partitions for these day numbers (days since 1970)."""
    for day in sorted(set(days)):
        partitions.ensure_partition(LOGS_PARTITIONS, day_of(day))


def rows_from_batches(batches: list[Batch], window: Window, counts: Counter[str]) -> list[Row]:
    """Return the storable rows of `batches`, counting rejected and truncated records."""
    rows: list[Row] = []
    for batch in batches:
        for record in batch.logs:
            try:
                row = to_row(record, batch.host, window)
            except RecordRejected:
                counts[REJECTED] += 1
                continue
            counts[TRUNCATED] += row.truncated
            rows.append(row)
    return rows


def copy_rows(cursor: Cursor, rows: list[Row]) -> int:
    """COPY `rows` through `cursor` (inside the caller's transaction); return how many."""
    if not rows:
        return 0
    ensure_days(row.day for row in rows)
    data = "".join(row.line for row in rows).encode("utf-8")
    with cursor.copy(COPY_SQL) as copy:
        copy.write(data)
    return len(rows)
