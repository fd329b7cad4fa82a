"""Evaluate the rules on freshly ingested metrics without waiting for the next periodic cycle.

After each committed chunk the ingest job records the metric names it stored and, unless
an evaluation is already queued, enqueues one on the alerts queue. At most one
evaluation waits at a time; names arriving while one runs are picked up by the next.
"""

from __future__ import annotations

import logging

from redis import Redis

from alerting_worker.queues import ALERTS, get_queue
from collector_server.redis_conn import get_redis
from shared import streams

log = logging.getLogger(__name__)

QUEUED_TTL_SECONDS = 30  # if the queued job is lost, the flag expires and ingest enqueues again


def _keys() -> tuple[str, str]:
    prefix = streams.prefix()
    return f"{prefix}:alerts:ingested-metrics", f"{prefix}:alerts:evaluation-queued"


def notify(client: Redis, names: set[str]) -> bool:
    """Record `names` as freshly ingested; enqueue an evaluation unless one is queued. Return True if enqueued."""
    if not names:
        return False
    pending, queued = _keys()
    pipe = client.pipeline(transaction=True)
    pipe.sadd(pending, *sorted(names))
    pipe.set(queued, 1, nx=True, ex=QUEUED_TTL_SECONDS)
    _, first = pipe.execute()
    if first:
        get_queue(ALERTS).enqueue(evaluate_ingested, description="evaluate rules on ingested metrics")
    return bool(first)


def take(client: Redis) -> list[str]:
    """Return and forget the metric names waiting for evaluation."""
    pending, queued = _keys()
    pipe = client.pipeline(transaction=True)
    pipe.delete(queued)
    pipe.smembers(pending)
    pipe.delete(pending)
    _, members, _ = pipe.execute()
    return sorted(m.decode() for m in members)


def requested(client: Redis) -> bool:
    """Whether ingest has asked for an evaluation that has not started yet (one GET)."""
    return bool(client.exists(_keys()[1]))


def run_if_requested() -> dict[str, int] | None:
    """Run the ingest fast path now if one is waiting (called between the steps of a long cycle).

    The worker running the cycle may be the only one serving the notifications queue too, so
    the notifications this writes are also delivered here at once (a delivery is claimed, so
    the queued delivery job then skips it; a transient failure leaves it to that job's retries).
    The queued evaluation job then finds nothing to do. A failure is logged and left to it.
    """
    from django.utils import timezone

    from alerting_worker.alerting import deliver, dispatch, evaluate
    from collector_server.orgs import scope

    try:
        client = get_redis()
        if not requested(client):
            return None
        names = take(client)
        if not names:
            return None
        with scope.use_scope(None):  # as the queued job runs: across organisations, not the cycle's
            now = timezone.now()
            stats = evaluate.evaluate_all(now, metrics=set(names))
            written = dispatch.dispatch_all(now)
            for notification_id in written:
                try:
                    deliver.deliver(notification_id)
                except Exception as exc:  # DeliveryRetry or worse: the queued delivery job goes on
                    log.info(
                        "alerting: notification %s left to its queued delivery: %s", notification_id, exc
                    )
    except Exception:  # the periodic cycle must go on; the queued job retries the fast path
        log.exception("alerting: the ingest fast path failed inside the periodic cycle")
        return None
    return {"rules": stats.rules, "transitions": len(stats.transitions), "notifications": len(written)}


def evaluate_ingested() -> dict[str, int]:
    """RQ job: evaluate the rules that read the metrics ingested since the last run."""
    from alerting_worker.alerting.jobs import evaluate_metrics

    names = take(get_redis())
    if not names:
        return {"rules": 0, "transitions": 0, "notifications": 0}
    return evaluate_metrics(names)
