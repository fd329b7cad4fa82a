"""'Send test notification': queue a test payload through the outbox to the notifications worker.

The server never connects to a channel's destination itself: the test row is delivered by
a worker, through the same transport and egress guard as any notification, and the caller
reads the outcome afterwards (status and a short reason; never the remote answer's body).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from alerting_worker.alerting import deliver, payloads
from collector_server.alerts.models import Channel, DeliveryAttempt, Notification

TEST_GROUP_KEY = "test"


def queue_test(channel: Channel) -> Notification:
    """Write a test row to the outbox and queue its delivery once the transaction commits."""
    now = timezone.now()
    note = Notification.objects.create(
        channel=channel,
        idempotency_key=f"fw-test-{channel.pk}-{uuid.uuid4().hex[:12]}",
        group_key=TEST_GROUP_KEY,
        payload=payloads.test_payload(channel, now),
        created_at=now,
    )
    transaction.on_commit(lambda: _enqueue(note.pk))
    return note


def _enqueue(notification_id: int) -> None:
    from alerting_worker.queues import NOTIFICATIONS, get_queue

    get_queue(NOTIFICATIONS).enqueue(
        deliver_test, notification_id, description=f"test notification {notification_id}"
    )


def deliver_test(notification_id: int) -> str:
    """Queue job: deliver a test row once; a transient failure fails it (a test is not retried)."""
    try:
        return deliver.deliver(notification_id)
    except deliver.DeliveryRetry:
        Notification.objects.filter(pk=notification_id).update(status=Notification.FAILED)
        return Notification.FAILED


def outcome(note: Notification) -> dict[str, Any]:
    """Return what a caller may see of a test send: its status and a short reason."""
    attempt = DeliveryAttempt.objects.filter(notification=note).order_by("-pk").first()
    done = note.status in (Notification.SENT, Notification.FAILED)
    if note.status == Notification.SENT:
        message = f"Test notification sent to {note.channel.name}" + (
            f": {attempt.response}" if attempt else ""
        )
    elif note.status == Notification.FAILED:
        message = f"Test notification to {note.channel.name} failed: {note.last_error}"
    else:
        message = f"Test notification to {note.channel.name} is queued"
    return {
        "notification": note.pk,
        "status": note.status,
        "success": (note.status == Notification.SENT) if done else None,
        "message": message,
    }
