"""Deliver outbox rows: claim, send, record each attempt, retry transient errors, fall back on permanent.

A row is claimed with a conditional UPDATE (pending, or sending with an expired lease),
so a worker that died before sending leaves a row the sweeper hands out again, and two
workers never send the same row at once. A worker that died after sending but before
recording leaves the row ``sending``; after the lease it is resent with the same
idempotency key (webhook ``Idempotency-Key`` header, PagerDuty ``dedup_key``, email
``Message-ID``), so the receiver can drop the duplicate.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from alerting_worker.alerting import transports
from collector_server.alerts.models import Channel, DeliveryAttempt, Notification

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)
STALE_PENDING = timedelta(minutes=1)


def retry_intervals() -> list[int]:
    """Seconds between delivery attempts (setting NOTIFY_RETRY_INTERVALS); one RQ retry per entry."""
    return list(settings.NOTIFY_RETRY_INTERVALS)


def max_attempts() -> int:
    """The first attempt plus one per retry interval; a transient error past that fails the row."""
    return len(retry_intervals()) + 1


class DeliveryRetry(Exception):
    """Raised so that RQ retries the job later (a transient error)."""


def claim(notification_id: int, now: datetime) -> bool:
    claimable = Q(status=Notification.PENDING) | Q(status=Notification.SENDING, claimed_at__lt=now - LEASE)
    return bool(
        Notification.objects.filter(claimable, pk=notification_id).update(
            status=Notification.SENDING, claimed_at=now, attempts=F("attempts") + 1
        )
    )


def deliver(notification_id: int, now: datetime | None = None) -> str:
    """Deliver one notification; return its status. Raise DeliveryRetry on a transient error."""
    now = now or timezone.now()
    if not claim(notification_id, now):
        return "skipped"
    note = Notification.objects.select_related("channel").get(pk=notification_id)
    channel = note.channel
    started = time.monotonic()
    try:
        response = _send(channel, note)
    except transports.TransportError as exc:
        _record(note, started, ok=False, text=exc.message, permanent=exc.permanent)
        if exc.permanent or note.attempts >= max_attempts():
            fail(note, exc.message)
            return Notification.FAILED
        Notification.objects.filter(pk=note.pk, status=Notification.SENDING).update(
            status=Notification.PENDING, last_error=exc.message
        )
        raise DeliveryRetry(f"{channel.name}: {exc.message}") from None
    _record(note, started, ok=True, text=response)
    Notification.objects.filter(pk=note.pk).update(
        status=Notification.SENT, sent_at=timezone.now(), last_error=""
    )
    if channel.status != Channel.OK:
        Channel.objects.filter(pk=channel.pk).update(status=Channel.OK, last_error="")
    return Notification.SENT


def _send(channel: Channel, note: Notification) -> str:
    """Send through the channel's transport; an unexpected error counts as a transient one.

    Without this, an exception that is not a TransportError (a truncated HTTP response, a
    bug in a transport) would leave the row 'sending' for the sweeper to retry forever,
    never reaching 'failed' or the fallback channel.
    """
    try:
        return transports.get(channel.kind).send(channel.config, note.payload, note.idempotency_key)
    except transports.TransportError:
        raise
    except Exception as exc:
        log.exception("alerting: unexpected error sending through %s", channel.name)
        raise transports.TransportError(f"unexpected {type(exc).__name__}: {exc}") from exc


def _record(note: Notification, started: float, ok: bool, text: str, permanent: bool = False) -> None:
    DeliveryAttempt.objects.create(
        notification=note,
        duration_ms=(time.monotonic() - started) * 1000,
        ok=ok,
        permanent=permanent,
        response=text[:2000],
    )


def fail(note: Notification, error: str) -> None:
    """Mark the row failed and its channel failing; hand the message to the fallback channel if any."""
    channel = note.channel
    with transaction.atomic():
        Notification.objects.filter(pk=note.pk).update(status=Notification.FAILED, last_error=error)
        Channel.objects.filter(pk=channel.pk).update(status=Channel.FAILING, last_error=error)
        fallback = channel.fallback
        if fallback is None or not fallback.enabled or fallback.pk == channel.pk:
            return
        if fallback.pk in _channels_tried(note):
            # The message already went through that channel: a loop made behind validation's back.
            log.warning("alerting: fallback loop at channel %s; not handing the message on", channel.name)
            return
        copy, created = Notification.objects.get_or_create(
            idempotency_key=f"{note.idempotency_key}:fallback-{fallback.pk}",
            defaults={"channel": fallback, "group_key": note.group_key, "payload": note.payload},
        )
        if created:
            from alerting_worker.alerting import jobs

            transaction.on_commit(lambda: jobs.enqueue_delivery(copy.pk))
    log.warning("alerting: channel %s failing (%s)", channel.name, error)


def _channels_tried(note: Notification) -> set[int]:
    """The channels a message went through: the original row's, then one per ``:fallback-N``."""
    original, *hops = note.idempotency_key.split(":")
    tried = {
        int(hop[len("fallback-") :]) for hop in hops if hop.startswith("fallback-") and hop[9:].isdigit()
    }
    first = Notification.objects.filter(idempotency_key=original).values_list("channel_id", flat=True).first()
    return tried | {note.channel_id} | ({first} if first else set())


def stale(now: datetime | None = None) -> list[int]:
    """Return the ids of rows whose delivery was lost: pending too long, or sending past the lease."""
    now = now or timezone.now()
    lost = Q(status=Notification.PENDING, created_at__lt=now - STALE_PENDING, claimed_at__isnull=True)
    lost |= Q(status=Notification.PENDING, claimed_at__lt=now - timedelta(seconds=retry_intervals()[-1] * 2))
    lost |= Q(status=Notification.SENDING, claimed_at__lt=now - LEASE)
    return list(Notification.objects.filter(lost).values_list("pk", flat=True))
