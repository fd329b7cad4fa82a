"""RQ jobs that drain the streams. The scheduler enqueues one every second per stream."""

from __future__ import annotations

import atexit
import logging
import time
from collections import Counter
from typing import Any

from django.conf import settings
from django.db import close_old_connections
from rq import get_current_job

from alerting_worker.ingest import failures, signatures
from alerting_worker.ingest.consumer import (
    DrainResult,
    StreamConsumer,
    default_consumer_name,
    live_default_node,
)
from alerting_worker.ingest.failures import DependencyUnavailable
from alerting_worker.ingest.metrics_handler import MetricsHandler
from alerting_worker.ingest.shards import ShardedDrain
from alerting_worker.queues import INGEST, get_queue
from collector_server.redis_conn import get_stream_redis, is_cluster, stream_keys
from shared import streams

log = logging.getLogger(__name__)
MAX_QUEUED_DRAINS = 2


def handler_for(kind: str) -> Any:
    if kind == streams.METRICS:
        return MetricsHandler()
    if kind == streams.LOGS:
        from alerting_worker.ingest.logs_handler import LOGS_HANDLER

        return LOGS_HANDLER
    raise ValueError(f"no ingest handler for stream kind {kind!r}")


def consumer_name() -> str:
    job = get_current_job()
    worker = getattr(job, "worker_name", None) if job else None
    return worker or default_consumer_name()


def drain(
    kind: str = streams.METRICS, max_seconds: float | None = None, stop_when_empty: bool = True
) -> dict[str, int]:
    """Drain the `kind` stream into Postgres for up to `max_seconds` (or until it is empty)."""
    if _enough_queued(kind):
        return {"skipped": 1}
    close_old_connections()
    client = get_stream_redis()
    handler = handler_for(kind)
    name = consumer_name()
    verifier = signatures.Verifier(client)  # one enrollment cache for every shard
    consumers = [
        StreamConsumer(
            client,
            kind,
            handler,
            consumer=name,
            chunk=settings.INGEST_CHUNK,
            chunk_samples=settings.INGEST_CHUNK_SAMPLES,
            block_ms=settings.INGEST_BLOCK_MS,
            claim_idle_ms=settings.INGEST_CLAIM_IDLE_MS,
            max_deliveries=settings.INGEST_MAX_DELIVERIES,
            max_batch_bytes=settings.LIMIT_BATCH_BYTES,
            verifier=verifier,
            key=key,
        )
        for key in stream_keys(kind)
    ]
    try:
        result = ShardedDrain(consumers).drain(
            max_seconds=max_seconds or settings.INGEST_JOB_SECONDS, stop_when_empty=stop_when_empty
        )
    except DependencyUnavailable as exc:
        outage.waiting(kind, str(exc))
        return {"waiting": 1}
    except failures.REDIS_OUTAGES as exc:
        if not is_cluster(client):
            raise
        live_default_node(client)
        # A master of the streams' cluster is down: its shards' entries wait there (pending or
        # unread) and the next drain resumes them; the other shards go on in the meantime.
        outage.waiting(kind, f"the streams' Redis Cluster is unavailable ({type(exc).__name__}: {exc})")
        return {"waiting": 1}
    finally:
        close_old_connections()
    outage.resumed(kind)
    SUMMARY.add(kind, result)
    return summary(result)


class Outage:
    """Log a database outage once when ingest starts waiting and once when it resumes, not every second."""

    def __init__(self) -> None:
        self.since: dict[str, float] = {}

    def waiting(self, kind: str, problem: str) -> None:
        if kind not in self.since:
            self.since[kind] = time.monotonic()
            log.warning("%s; entries stay in the stream until it is back", problem)

    def resumed(self, kind: str) -> None:
        started = self.since.pop(kind, None)
        if started is not None:
            log.warning("ingest of the %s stream resumed after %.0f s", kind, time.monotonic() - started)


outage = Outage()


def drain_metrics() -> dict[str, int]:
    return drain(streams.METRICS)


def drain_logs() -> dict[str, int]:
    return drain(streams.LOGS)


def summary(result: DrainResult) -> dict[str, int]:
    return {
        "entries": result.entries,
        "batches": result.batches,
        "rows": result.rows,
        "duplicates": result.duplicates,
        "dead_lettered": result.dead_lettered,
        "reclaimed": result.reclaimed,
        "retried": result.retried,
    }


class IngestSummary:
    """Totals of this worker's drains, logged at INFO once per INGEST_LOG_SUMMARY_SECONDS."""

    def __init__(self) -> None:
        self.totals: dict[str, Counter] = {}
        self.since = time.monotonic()

    def add(self, kind: str, result: DrainResult) -> None:
        self.totals.setdefault(kind, Counter()).update(summary(result) | {"jobs": 1})
        if time.monotonic() - self.since >= settings.INGEST_LOG_SUMMARY_SECONDS:
            self.flush()

    def flush(self) -> None:
        seconds = time.monotonic() - self.since
        parts = [
            f"{kind}: {t['batches']} batches, {t['rows']} {'samples' if kind == streams.METRICS else 'records'}, "
            f"{t['duplicates']} duplicates, {t['dead_lettered']} dead-lettered, lag {_lag(kind)}"
            for kind, t in sorted(self.totals.items())
        ]
        jobs = sum(t["jobs"] for t in self.totals.values())
        log.info(
            "ingest summary, last %.0fs, %d drains: %s", seconds, jobs, "; ".join(parts) or "nothing drained"
        )
        self.totals, self.since = {}, time.monotonic()


def _lag(kind: str) -> str:
    """Entries of the stream's shards not yet delivered to the ingest group ("?" when Redis cannot say)."""
    total = 0
    for key in stream_keys(kind):
        try:
            groups = get_stream_redis().xinfo_groups(key)
        except Exception:  # no stream yet, or Redis busy: the summary must never fail the drain
            return "?"
        lags = [
            group.get("lag")
            for group in groups
            if _text(group.get("name")) == streams.CONSUMER_GROUP and group.get("lag") is not None
        ]
        if not lags:
            return "?"
        total += int(lags[0])
    return str(total)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


SUMMARY = IngestSummary()


def flush_summary_at_exit() -> None:
    """Log what the last minute drained when the worker process stops (registered by worker_main only,
    so a test or a management command that drains in-process logs nothing after logging has shut down)."""
    atexit.register(lambda: SUMMARY.flush() if SUMMARY.totals else None)


def _enough_queued(kind: str) -> bool:
    """Skip when other drain jobs for this stream already wait: the scheduler enqueues every second."""
    job = get_current_job()
    if job is None:
        return False
    queue = get_queue(INGEST)
    waiting = [j for j in queue.get_jobs(length=20) if j and j.func_name == job.func_name]
    return len(waiting) >= MAX_QUEUED_DRAINS
