"""Write logs batches: validate each record, COPY the good ones, count the rest.

A bad record (unknown level, timestamp outside retention, wrong types, an id
over 200 characters) is counted as ``logs_rejected`` and the rest of its batch is
stored; over-long messages are cut and counted as ``logs_truncated``.
"""

from __future__ import annotations

from collections import Counter

from django.conf import settings
from django.db import transaction
from psycopg import Cursor

from alerting_worker.ingest import stats
from collector_server.logs import writer
from collector_server.redis_conn import get_stream_redis
from shared.wire import Batch


class LogsHandler:
    """The ingest handler for kind "logs", shaped like MetricsHandler: prepare, then call."""

    def prepare(self, batches: list[Batch]) -> None:
        """Create the day partitions these batches need, outside the ingest transaction."""
        window = writer.current_window()
        days = {
            int(record["ts"] // 86400)
            for batch in batches
            for record in batch.logs
            if isinstance(record, dict)
            and isinstance(record.get("ts"), int | float)
            and window.oldest <= record["ts"] <= window.newest
        }
        writer.ensure_days(days)

    def __call__(self, cursor: Cursor, batches: list[Batch]) -> tuple[int, Counter[str]]:
        """Store the records of `batches`; return (rows written, counters for the stats hash)."""
        counts: Counter[str] = Counter()
        limit = settings.LIMIT_LOG_ATTRS_BYTES
        rows = writer.rows_from_batches(batches, writer.current_window(), counts, max_attrs_bytes=limit)
        written = writer.copy_rows(cursor, rows)
        counts[writer.INGESTED] += written
        return written, counts


LOGS_HANDLER = LogsHandler()


def write_logs(cursor: Cursor, batches: list[Batch]) -> int:
    """Store the records of `batches` through `cursor`; return rows written.

    Counters (logs_ingested, logs_rejected, logs_truncated) are added to the Redis
    stats hash once the surrounding transaction commits. Use this or LOGS_HANDLER,
    whose caller adds the counters itself, not both.
    """
    written, counts = LOGS_HANDLER(cursor, batches)
    transaction.on_commit(lambda: add_stats(counts), robust=True)
    return written


def add_stats(counts: Counter[str]) -> None:
    """Add non-zero counters to the pipeline stats hash."""
    pipe = get_stream_redis().pipeline(transaction=False)
    stats.add(pipe, counts)
    pipe.execute()
