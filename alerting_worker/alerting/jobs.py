"""RQ entry points of alerting (evaluation, dispatch, delivery, outbox sweep)."""

from __future__ import annotations

import logging
from datetime import datetime

from django.utils import timezone
from rq import Retry

from alerting_worker.alerting import deliver, dispatch, evaluate
from alerting_worker.queues import NOTIFICATIONS, get_queue

log = logging.getLogger(__name__)


def evaluate_and_dispatch(now: datetime | None = None) -> dict[str, int]:
    """Periodic job: evaluate every enabled rule, then dispatch notifications.

    Between the selections of the cycle, the rules on freshly ingested metrics are evaluated
    (and their notifications dispatched) at once when ingest has asked for it, instead of
    waiting behind the whole cycle on the alerts queue (``alert_trigger.run_if_requested``).
    """
    from alerting_worker.ingest import alert_trigger

    fixed_now = now is not None
    now = now or timezone.now()
    stats = evaluate.evaluate_all(now, between=None if fixed_now else alert_trigger.run_if_requested)
    written = dispatch.dispatch_all(now)
    return {
        "rules": stats.rules,
        "groups": stats.groups,
        "transitions": len(stats.transitions),
        "errors": len(stats.errors),
        "distinct_queries": stats.distinct_queries,
        "blocked": len(stats.blocked),
        "notifications": len(written),
    }


def evaluate_metrics(metric_names: list[str], now: datetime | None = None) -> dict[str, int]:
    """Queue job for the ingest fast path: evaluate only the rules reading these metrics, then dispatch."""
    now = now or timezone.now()
    stats = evaluate.evaluate_all(now, metrics=set(metric_names))
    written = dispatch.dispatch_all(now)
    return {"rules": stats.rules, "transitions": len(stats.transitions), "notifications": len(written)}


def dispatch_only(now: datetime | None = None) -> int:
    """Periodic job: advance group timers (group_wait, group_interval, repeat) between evaluations."""
    return len(dispatch.dispatch_all(now))


def deliver_notification(notification_id: int) -> str:
    """Queue job: deliver one outbox row (RQ retries it on a transient error)."""
    return deliver.deliver(notification_id)


def enqueue_delivery(notification_id: int) -> None:
    intervals = deliver.retry_intervals()
    get_queue(NOTIFICATIONS).enqueue(
        deliver_notification,
        notification_id,
        # RQ parks a retried job in its ScheduledJobRegistry; the scheduler that every
        # fleetwatch-worker runs (work(with_scheduler=True)) moves it back when it is due.
        retry=Retry(max=len(intervals), interval=intervals),
        description=f"deliver notification {notification_id}",
    )


def sweep_outbox(now: datetime | None = None) -> int:
    """Periodic job: hand out again the rows whose worker died before finishing them."""
    ids = deliver.stale(now)
    for notification_id in ids:
        enqueue_delivery(notification_id)
    if ids:
        log.warning("alerting: re-enqueued %d lost notification(s)", len(ids))
    return len(ids)
