"""Keep routine job lines out of INFO: each ingest drain (two a second) is DEBUG.

RQ writes four INFO lines per job (dequeued, completed, "Job OK", result kept) and its cron
scheduler one per enqueue; for the drains that run every second that buried the lines that
matter. The drains' totals come instead as one INFO summary a minute per worker
(INGEST_LOG_SUMMARY_SECONDS, alerting_worker.ingest.jobs). Other jobs keep their INFO lines.
"""

from __future__ import annotations

import logging
import re

ANSI = re.compile(r"\x1b\[[0-9;]*m")
# The dequeued and "Job OK" lines name the queue; the completed and enqueued lines the function.
ROUTINE = re.compile(
    r": ingest: |alerting_worker\.ingest\.jobs\.drain_|Enqueued job drain_\w+ to queue ingest"
    r"|collector_server\.ui\.fleet\.refresh_default_sparklines|Enqueued job refresh_default_sparklines "
)


class RoutineJobFilter(logging.Filter):
    """Demote RQ's per-job INFO lines of the ingest drains to DEBUG (dropped unless DEBUG is on)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not ROUTINE.search(ANSI.sub("", record.getMessage())):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def quiet_routine_jobs(*logger_names: str) -> None:
    """Install the filter on RQ's worker and cron loggers (idempotent)."""
    for name in logger_names or ("rq.worker", "rq.cron"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RoutineJobFilter) for f in logger.filters):
            logger.addFilter(RoutineJobFilter())
