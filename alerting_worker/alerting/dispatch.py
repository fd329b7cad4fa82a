"""Turn alert state into notifications, with Alertmanager's grouping semantics.

For each channel, firing alerts are grouped by the channel's ``group_by`` labels. A new
group waits ``group_wait`` from its first alert's firing; later changes (new firing,
resolved, a told alert's severity raised) go out at most every ``group_interval``; an
unchanged group repeats after the repeat interval (the rule's, else the channel's, else
ALERT_COOLDOWN_PERIOD). Silenced and inhibited alerts are left
out (and flagged); a flapping alert is told once and not at each change; the per-channel
hourly limit turns the excess into counted ``suppressed`` rows. The group state and the outbox row are written
in one transaction, under a per-channel advisory lock so concurrent dispatchers agree.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from alerting_worker.alerting import escalation, evaluate, payloads, routing
from collector_server.alerts.fingerprint import ROOT_ROUTE_KEY
from collector_server.alerts.models import (
    Alert,
    AlertEvent,
    Channel,
    Notification,
    NotificationGroup,
    Silence,
)
from collector_server.orgs import scope

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
HOST_DOWN_QUERY = "host_down"


def dispatch_all(now: datetime | None = None) -> list[int]:
    """Dispatch every enabled channel, then advance escalations; return the ids of the notifications written."""
    now = now or timezone.now()
    muted = mark_muted(now)
    trees = routing.load_trees()  # one routing tree per organisation
    written: list[int] = []
    for channel in Channel.objects.filter(enabled=True).exclude(kind__in=switched_off_kinds()):
        tree = trees.get(channel.organization_id, routing.EMPTY)
        written.extend(dispatch_channel(channel, now, muted, tree))
    for org_id, tree in sorted(trees.items()):
        if tree.root is not None:
            with scope.use_organization(org_id):
                written.extend(escalation.advance(tree, now, muted, org_id))
    return written


def switched_off_kinds() -> list[str]:
    """Channel kinds turned off by ENABLE_EMAIL_ALERTS / ENABLE_SLACK_ALERTS (the seeds' switches)."""
    switches = {Channel.EMAIL: settings.ENABLE_EMAIL_ALERTS, Channel.SLACK: settings.ENABLE_SLACK_ALERTS}
    return [kind for kind, on in switches.items() if not on]


def mark_muted(now: datetime) -> set[int]:
    """Flag firing alerts as silenced or inhibited (for display) and return the ids of the muted ones."""
    silences: dict[int, list[Silence]] = defaultdict(list)
    for silence in Silence.objects.filter(starts_at__lte=now):
        if silence.is_active(now):
            silences[silence.organization_id].append(silence)
    firing = list(Alert.objects.filter(state=Alert.FIRING).select_related("rule"))
    # A silence or a down host mutes only alerts of its own organisation.
    down_hosts = {
        (a.organization_id, a.host)
        for a in firing
        if a.rule and a.rule.query_type == HOST_DOWN_QUERY and a.host
    }
    muted: set[int] = set()
    for alert in firing:
        silenced = any(s.matches(alert.labels) for s in silences[alert.organization_id])
        inhibited = bool(
            (alert.organization_id, alert.host) in down_hosts
            and not (alert.rule and alert.rule.query_type == HOST_DOWN_QUERY)
        )
        if silenced or inhibited:
            muted.add(alert.pk)
        if (silenced, inhibited) != (alert.silenced, alert.inhibited):
            Alert.objects.filter(pk=alert.pk).update(silenced=silenced, inhibited=inhibited)
    return muted


def _channel_alerts(channel: Channel) -> list[Alert]:
    routed = Q(rule__channels=channel)
    if channel.is_default:
        routed |= Q(rule__isnull=True) | Q(rule__channels__isnull=True)
    # Alerts received from an Alertmanager were notified there: never sent on (no loops).
    alerts = Alert.objects.filter(
        routed, state=Alert.FIRING, source=Alert.FLEETWATCH, organization_id=channel.organization_id
    )
    return list(alerts.select_related("rule").distinct())


def group_key(
    group_by: list[str] | tuple[str, ...], labels: dict[str, Any], omit_missing: bool = False
) -> tuple[str, dict[str, str]]:
    """Return the stored group key and the group labels (routes omit missing labels, as Alertmanager)."""
    names = [n for n in (list(group_by) or ["alertname"]) if not omit_missing or n in labels]
    group_labels = {n: str(labels.get(n, "")) for n in names}
    return ",".join(f"{k}={group_labels[k]}" for k in sorted(group_labels)), group_labels


def channel_policy(channel: Channel) -> routing.RoutePolicy:
    """The channel's own grouping and timers (no routing tree)."""
    return routing.RoutePolicy(
        route_id=None,
        route_key=ROOT_ROUTE_KEY,
        channel_id=channel.pk,
        group_by=tuple(channel.group_by or ["alertname"]),
        group_wait=channel.group_wait_seconds,
        group_interval=channel.group_interval_seconds,
        repeat=None,
        escalation_id=None,
    )


def _assignments(channel: Channel, tree: routing.Tree) -> list[tuple[Alert, routing.RoutePolicy]]:
    """The firing alerts this channel is told of, each with the route (or channel) policy grouping it."""
    if tree.root is None:
        policy = channel_policy(channel)
        return [(alert, policy) for alert in _channel_alerts(channel)]
    out = []
    for alert in firing_alerts(channel.organization_id):
        out.extend((alert, p) for p in tree.match(alert.labels) if p.channel_id == channel.pk)
    return out


def firing_alerts(org_id: int) -> list[Alert]:
    """The firing alerts of one organisation (a routing tree never sees another's)."""
    alerts = Alert.objects.filter(state=Alert.FIRING, source=Alert.FLEETWATCH, organization_id=org_id)
    return list(alerts.select_related("rule"))


def _stored_key(policy: routing.RoutePolicy, key: str) -> str:
    return key if policy.route_id is None else f"route{policy.route_id}|{key}"


def dispatch_channel(
    channel: Channel, now: datetime, muted: set[int] | None = None, tree: routing.Tree | None = None
) -> list[int]:
    """Decide and write the notifications of one channel (one dispatcher per channel at a time)."""
    muted = mark_muted(now) if muted is None else muted
    tree = routing.load_tree(channel.organization_id) if tree is None else tree
    written: list[int] = []
    with scope.use_organization(channel.organization_id), transaction.atomic():
        if not _try_lock(channel.pk):
            return written
        groups: dict[str, list[Alert]] = defaultdict(list)
        labels_of: dict[str, dict[str, str]] = {}
        policy_of: dict[str, routing.RoutePolicy] = {}
        for alert, policy in _assignments(channel, tree):
            key, labels = group_key(policy.group_by, alert.labels, omit_missing=policy.route_id is not None)
            key = _stored_key(policy, key)
            labels_of[key], policy_of[key] = labels, policy
            if alert.pk not in muted:
                groups[key].append(alert)
        rows = {g.key: g for g in NotificationGroup.objects.filter(channel=channel)}
        for key in set(groups) | set(rows):
            policy = policy_of.get(key) or _row_policy(rows[key], channel, tree)
            labels = labels_of.get(key) or rows[key].labels
            note = _dispatch_group(channel, key, labels, groups.get(key, []), rows.get(key), now, policy)
            if note is not None:
                written.append(note.pk)
    return written


def _row_policy(row: NotificationGroup, channel: Channel, tree: routing.Tree) -> routing.RoutePolicy:
    """The policy of a group with no firing alert left: its route's, else the channel's."""
    policy = tree.policies.get(row.route_id) if row.route_id else None
    return policy or channel_policy(channel)


def _try_lock(channel_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [7031, channel_id])
        return bool(cursor.fetchone()[0])


@dataclass
class GroupView:
    """What one group looks like now, compared with what its channel was last told."""

    firing: list[Alert]
    resolved: list[Alert]
    flapping_open: list[Alert]  # flapping alerts told as firing while their latest episode is over
    still_open: set[str]
    flapping: set[str]
    new_flapping: set[str]

    @property
    def firing_fps(self) -> set[str]:
        return {a.fingerprint for a in self.firing}


def _view(firing: list[Alert], row: NotificationGroup | None, now: datetime) -> GroupView:
    firing_fps = {a.fingerprint for a in firing}
    notified = set(row.notified) if row else set()
    latest = _latest_by_fingerprint(notified - firing_fps)
    flapping = _flapping([*firing, *latest.values()], now)
    still_open = {fp for fp, a in latest.items() if a.state == Alert.FIRING or fp in flapping}
    return GroupView(
        firing=firing,
        resolved=[a for fp, a in latest.items() if fp not in still_open],
        flapping_open=[a for fp, a in latest.items() if fp in flapping and a.state != Alert.FIRING],
        still_open=still_open,
        flapping=flapping,
        new_flapping=flapping - set(row.flapping_told if row else []),
    )


def _escalated(firing: list[Alert], notified: set[str], since: datetime | None) -> set[str]:
    """Fingerprints of alerts told firing whose severity the evaluator raised after ``since``."""
    told = {a.pk: a.fingerprint for a in firing if a.fingerprint in notified}
    if not told or since is None:
        return set()
    raised = AlertEvent.objects.filter(
        alert_id__in=told, at__gt=since, note__startswith=evaluate.SEVERITY_RAISED
    ).values_list("alert_id", flat=True)
    return {told[pk] for pk in raised}


def _dispatch_group(
    channel: Channel,
    key: str,
    labels: dict[str, str],
    firing: list[Alert],
    row: NotificationGroup | None,
    now: datetime,
    policy: routing.RoutePolicy,
) -> Notification | None:
    view = _view(firing, row, now)
    notified = set(row.notified) if row else set()
    if row is None or row.last_sent_at is None:
        if not firing:
            return None
        first = min(a.fired_at or a.started_at for a in firing)
        if now < first + timedelta(seconds=policy.group_wait):
            return None
        reason = "new"
    elif now >= row.last_sent_at + timedelta(seconds=policy.group_interval) and (
        view.firing_fps - notified
        or view.resolved
        or view.new_flapping
        # the one query: asked only once the group may send an update at all
        or _escalated(firing, notified, row.last_sent_at)
    ):
        reason = "update"
    elif firing and now >= row.last_sent_at + timedelta(seconds=_repeat_seconds(channel, firing, policy)):
        reason = "repeat"
    else:
        return None
    return _send(channel, key, labels, view, row, reason, now, policy)


def _repeat_seconds(channel: Channel, firing: list[Alert], policy: routing.RoutePolicy) -> int:
    """Return the group's repeat interval: the shortest its rules set, else the route's, else the channel's."""
    overrides = [a.rule.repeat_interval_seconds for a in firing if a.rule and a.rule.repeat_interval_seconds]
    if overrides:
        return min(overrides)
    return policy.repeat if policy.repeat is not None else channel.effective_repeat_seconds


def _latest_by_fingerprint(fingerprints: set[str]) -> dict[str, Alert]:
    if not fingerprints:
        return {}
    pairs = [fp.split("|", 1) for fp in fingerprints]
    cond = Q()
    for name, labels_key in pairs:
        cond |= Q(name=name, labels_key=labels_key)
    latest: dict[str, Alert] = {}
    own = Alert.objects.filter(cond, source=Alert.FLEETWATCH)
    for alert in own.select_related("rule").order_by("started_at", "pk"):
        latest[alert.fingerprint] = alert
    return latest


def _flapping(alerts: Any, now: datetime) -> set[str]:
    """Return fingerprints whose recent state changes reach the flapping threshold."""
    alerts = [a for a in alerts if a.rule_id]
    if not alerts:
        return set()
    counts = (
        AlertEvent.objects.filter(
            rule_id__in={a.rule_id for a in alerts},
            labels_key__in={a.labels_key for a in alerts},
            at__gt=now - evaluate.FLAP_WINDOW,
            to_state__in=[Alert.FIRING, Alert.RESOLVED],
        )
        .values("rule_id", "labels_key")
        .annotate(n=Count("id"))
    )
    hot = {(c["rule_id"], c["labels_key"]) for c in counts if c["n"] >= evaluate.FLAP_THRESHOLD}
    return {a.fingerprint for a in alerts if (a.rule_id, a.labels_key) in hot}


def _over_limit(channel: Channel, now: datetime) -> bool:
    if not channel.rate_limit_per_hour:
        return False
    recent = Notification.objects.filter(channel=channel, created_at__gt=now - HOUR).exclude(
        status=Notification.SUPPRESSED
    )
    return recent.count() >= channel.rate_limit_per_hour


def _send(
    channel: Channel,
    key: str,
    labels: dict[str, str],
    view: GroupView,
    row: NotificationGroup | None,
    reason: str,
    now: datetime,
    policy: routing.RoutePolicy,
) -> Notification:
    """Write the outbox row and the group state together; enqueue delivery after commit."""
    firing = view.firing + view.flapping_open
    # Resolutions always go out: whoever was told an alert fired is told when it resolves.
    suppressed = bool(firing) and not view.resolved and _over_limit(channel, now)
    body = payloads.alertmanager(
        channel,
        key,
        labels,
        [] if suppressed else firing,
        view.resolved,
        now,
        flapping=view.flapping,
        route_key=policy.route_key,
    )
    digest = hashlib.sha1(f"{channel.pk}:{key}".encode()).hexdigest()[:12]
    note = Notification.objects.create(
        channel=channel,
        idempotency_key=f"fw-{channel.pk}-{digest}-{uuid.uuid4().hex[:12]}",
        group_key=key,
        status=Notification.SUPPRESSED if suppressed else Notification.PENDING,
        payload=body,
        created_at=now,
    )
    told_before = set(row.notified if row else [])
    if suppressed:
        Channel.objects.filter(pk=channel.pk).update(suppressed_count=F("suppressed_count") + 1)
        notified = view.still_open | (view.firing_fps & told_before)
    else:
        notified = view.firing_fps | view.still_open
    row = row or NotificationGroup(channel=channel, key=key, labels=labels, route_id=policy.route_id)
    row.notified, row.last_sent_at, row.sends = sorted(notified), now, row.sends + 1
    row.flapping_told = sorted(view.flapping & notified)
    if notified or suppressed:
        row.save()
    elif row.pk:
        row.delete()
    if not suppressed and body["alerts"]:
        from alerting_worker.alerting import jobs

        transaction.on_commit(lambda: jobs.enqueue_delivery(note.pk))
    log.info(
        "alerting: %s notification %s to %s (%s)", reason, note.idempotency_key, channel.name, note.status
    )
    return note
