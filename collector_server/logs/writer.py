"""COPY prepared log rows into logs_entry, creating the day partitions they need."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime

from django.conf import settings
from psycopg import Cursor

from collector_server.logs.models import LOGS_PARTITIONS
from collector_server.logs.records import (
    ATTRS_SIZE,
    COLUMNS,
    SECONDS_PER_DAY,
    RecordRejected,
    Row,
    Window,
    to_row,
)
from collector_server.monitoring import partitions
from collector_server.orgs.scope import organisations_for_agents
from shared import host_limits
from shared.wire import Batch

COPY_SQL = f"COPY logs_entry ({', '.join(COLUMNS)}) FROM STDIN"
INGESTED = "logs_ingested"
REJECTED = "logs_rejected"
# Per reason: "logs_rejected_<kind>" (kind of RecordRejected: too_old, future, timestamp, level,
# message, host, attrs, not_a_map, service, logger, request_id, trace_id, span_id, invalid).
REJECTED_PREFIX = "logs_rejected_"
TRUNCATED = "logs_truncated"
REJECT_LOG_INTERVAL = 60.0  # at most one WARNING line per reason kind per this many seconds

log = logging.getLogger(__name__)


class RejectLog:
    """Log rejected records at WARNING, at most one line per reason kind per interval.

    The line gives one example (its host and reason) and how many records of that kind were
    rejected since the previous line, so a flood of bad records costs one line a minute.
    """

    def __init__(
        self, interval: float = REJECT_LOG_INTERVAL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self.clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()
        self._lock = threading.Lock()

    def rejected(self, kind: str, reason: str, host: str) -> bool:
        """Note one rejected record; return whether a line was logged."""
        now = self.clock()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self.interval:
                self._suppressed[kind] += 1
                return False
            self._last[kind] = now
            suppressed = self._suppressed.pop(kind, 0)
        log.warning(
            "log record rejected (%s) from host %s: %s; %d more of this kind since the last report",
            kind,
            host,
            reason[:500],
            suppressed,
            extra={"reject_kind": kind, "reject_host": host, "suppressed": suppressed},
        )
        return True


reject_log = RejectLog()


def current_window() -> Window:
    return Window.now(settings.LOG_RETENTION_DAYS)


def day_of(day_number: int) -> date:
    return datetime.fromtimestamp(day_number * SECONDS_PER_DAY, UTC).date()


def ensure_days(days: Iterable[int]) -> None:
    """Create the logs_entry partitions for these day numbers (days since 1970)."""
    for day in sorted(set(days)):
        partitions.ensure_partition(LOGS_PARTITIONS, day_of(day))


def rows_from_batches(
    batches: list[Batch],
    window: Window,
    counts: Counter[str],
    max_attrs_bytes: int = 0,
    orgs: dict[str, int] | None = None,
) -> list[Row]:
    """Return the storable rows of `batches`, counting rejected and truncated records.

    Each batch's `stored` is set to its number of rows; a record over the per-host attrs
    limit (`max_attrs_bytes`, 0: none) is also noted in the batch's `refused`. ``orgs`` maps a
    batch's agent id to its organisation (see ``organisations_for_agents``).
    """
    rows: list[Row] = []
    if orgs is None:
        orgs = organisations_for_agents([batch.agent_id for batch in batches])
    truncated = 0
    for batch in batches:
        org_text = str(orgs[batch.agent_id])
        before = len(rows)
        for record in batch.logs:
            try:
                row = to_row(record, batch.host, window, org_text, max_attrs_bytes)
            except RecordRejected as exc:
                counts[REJECTED] += 1
                counts[REJECTED_PREFIX + exc.kind] += 1
                if exc.kind == ATTRS_SIZE:
                    batch.refuse(host_limits.LOG_ATTRS_BYTES)
                else:
                    reject_log.rejected(exc.kind, str(exc), batch.host)
                continue
            truncated += row.truncated
            rows.append(row)
        batch.stored = len(rows) - before
    if truncated:
        counts[TRUNCATED] += truncated
    return rows


def copy_rows(cursor: Cursor, rows: list[Row]) -> int:
    """COPY `rows` through `cursor` (inside the caller's transaction); return how many."""
    if not rows:
        return 0
    ensure_days({row.day for row in rows})
    data = "".join([row.line for row in rows]).encode("utf-8")
    with cursor.copy(COPY_SQL) as copy:
        copy.write(data)
    return len(rows)
