"""Named RQ queues, so slow maintenance never delays alerts."""

from __future__ import annotations

from rq import Queue

from alerting_worker import jobs_guard
from collector_server.redis_conn import get_redis

INGEST = "ingest"
ALERTS = "alerts"
NOTIFICATIONS = "notifications"
MAINTENANCE = "maintenance"
ALL_QUEUES = (INGEST, ALERTS, NOTIFICATIONS, MAINTENANCE)


def get_queue(name: str) -> Queue:
    """Return the RQ queue `name` on the configured Redis (JSON jobs, allow-listed functions)."""
    if name not in ALL_QUEUES:
        raise ValueError(f"unknown queue {name!r} (known: {', '.join(ALL_QUEUES)})")
    return jobs_guard.get_queue(name, get_redis())
