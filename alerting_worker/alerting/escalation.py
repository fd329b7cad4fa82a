"""Escalation steps, in the manner of PagerDuty.

An alert that fires and matches a route with an escalation policy starts at its first step:
each step's channel is told (a firing notification) once the alert has stayed unacknowledged
``delay_minutes`` since the previous step (since firing, for the first). Acknowledging stops
the escalation (no further step); resolving tells every step that was told, once. All times
come from ``now`` (the dispatcher's), so tests drive it with controlled time.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from django.db import transaction

from alerting_worker.alerting import payloads, routing
from collector_server.alerts.models import Alert, Channel, EscalationState, EscalationStep, Notification

log = logging.getLogger(__name__)
ACKNOWLEDGED, RESOLVED, LAST_STEP = "acknowledged", "resolved", "last step"


def advance(
    tree: routing.Tree, now: datetime, muted: set[int] | None = None, org_id: int | None = None
) -> list[int]:
    """Start, step on, stop and close escalations (of ``org_id``'s alerts: ``tree`` is its tree).

    Return the ids of the notifications written.
    """
    muted = muted or set()
    written: list[int] = []
    with transaction.atomic():
        _start(tree, now, muted, org_id)
        states = EscalationState.objects.select_for_update(skip_locked=True).filter(resolved_told=False)
        if org_id is not None:
            states = states.filter(alert__organization_id=org_id)
        for state in states:
            written.extend(_advance_one(state, now, muted))
    return written


def _start(tree: routing.Tree, now: datetime, muted: set[int], org_id: int | None = None) -> None:
    """Give every firing alert routed to an escalation policy its state (first step due at once or later)."""
    started = set(EscalationState.objects.values_list("alert_id", "policy_id"))
    firing = Alert.objects.filter(state=Alert.FIRING, source=Alert.FLEETWATCH, acknowledged_at__isnull=True)
    if org_id is not None:
        firing = firing.filter(organization_id=org_id)
    for alert in firing:
        for policy_id in {p.escalation_id for p in tree.match(alert.labels) if p.escalation_id}:
            if (alert.pk, policy_id) in started:
                continue
            first = _step(policy_id, 0)
            fired = alert.fired_at or alert.started_at
            due = fired + timedelta(minutes=first.delay_minutes) if first else None
            EscalationState.objects.create(alert=alert, policy_id=policy_id, next_at=due)


def _step(policy_id: int, index: int) -> EscalationStep | None:
    steps = list(EscalationStep.objects.filter(policy_id=policy_id).select_related("channel"))
    return steps[index] if index < len(steps) else None


def _advance_one(state: EscalationState, now: datetime, muted: set[int]) -> list[int]:
    alert = Alert.objects.get(pk=state.alert_id)
    if alert.state != Alert.FIRING:
        return _tell_resolved(state, alert, now)
    if alert.acknowledged_at is not None:
        if state.next_at is not None:
            state.next_at, state.stopped_reason = None, ACKNOWLEDGED
            state.save(update_fields=["next_at", "stopped_reason"])
        return []
    written = []
    while state.next_at is not None and now >= state.next_at and alert.pk not in muted:
        step = _step(state.policy_id, state.next_step)
        if step is None:
            state.next_at, state.stopped_reason = None, LAST_STEP
            break
        if step.channel.enabled:
            written.append(_notify(step.channel, alert, [alert], [], now, state).pk)
        if step.channel_id not in state.notified_channels:
            state.notified_channels = [*state.notified_channels, step.channel_id]
        state.next_step += 1
        following = _step(state.policy_id, state.next_step)
        state.next_at = state.next_at + timedelta(minutes=following.delay_minutes) if following else None
        if following is None:
            state.stopped_reason = LAST_STEP
    state.save()
    return written


def _tell_resolved(state: EscalationState, alert: Alert, now: datetime) -> list[int]:
    """Resolving tells every step that was told it fired, once."""
    written = []
    for channel in Channel.objects.filter(pk__in=state.notified_channels, enabled=True):
        written.append(_notify(channel, alert, [], [alert], now, state).pk)
    state.resolved_told, state.next_at = True, None
    state.stopped_reason = state.stopped_reason or RESOLVED
    state.save()
    return written


def _notify(
    channel: Channel,
    alert: Alert,
    firing: list[Alert],
    resolved: list[Alert],
    now: datetime,
    state: EscalationState,
) -> Notification:
    labels = {"alertname": alert.name}
    key = f"escalation{state.policy_id}|alert{alert.pk}"
    body = payloads.alertmanager(channel, key, labels, firing, resolved, now)
    note = Notification.objects.create(
        channel=channel,
        idempotency_key=f"fw-esc-{state.pk}-{uuid.uuid4().hex[:12]}",
        group_key=key,
        payload=body,
        created_at=now,
    )
    from alerting_worker.alerting import jobs

    transaction.on_commit(lambda: jobs.enqueue_delivery(note.pk))
    log.info(
        "alerting: escalation %s of alert %s to %s (%s)",
        state.policy_id,
        alert.pk,
        channel.name,
        body["status"],
    )
    return note
