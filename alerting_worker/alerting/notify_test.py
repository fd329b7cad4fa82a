"""'Send test notification': deliver a test payload through the outbox right away."""

from __future__ import annotations

import uuid

from django.utils import timezone

from alerting_worker.alerting import deliver, payloads
from collector_server.alerts.models import Channel, Notification


def send_test(channel: Channel) -> tuple[bool, str]:
    """Write a test row to the outbox, deliver it in this process and return (ok, what happened)."""
    now = timezone.now()
    note = Notification.objects.create(
        channel=channel,
        idempotency_key=f"fw-test-{channel.pk}-{uuid.uuid4().hex[:12]}",
        group_key="test",
        payload=payloads.test_payload(channel, now),
        created_at=now,
    )
    try:
        outcome = deliver.deliver(note.pk)
    except deliver.DeliveryRetry as exc:
        # A test is answered now; the sweeper must not send it later.
        Notification.objects.filter(pk=note.pk).update(status=Notification.FAILED)
        return False, f"temporary failure: {exc}"
    note.refresh_from_db()
    if outcome == Notification.SENT:
        return True, f"Test notification sent to {channel.name}"
    return False, f"Test notification to {channel.name} failed: {note.last_error}"
