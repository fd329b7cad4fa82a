"""Alerting figures for `/metrics`: open alerts, notification outcomes, suppressed and failing channels.

``alert_families()`` returns families in the format of ``collector_server.monitoring.prometheus``;
its ``collect()`` adds them (wired by the lead).
"""

from __future__ import annotations

from django.db.models import Count, Q, Sum

from collector_server.alerts.models import Alert, Channel, Notification
from collector_server.monitoring.prometheus import NAMESPACE, Family


def alert_families(detailed: bool = True) -> list[Family]:
    """Read the alerting tables now and return their families.

    ``detailed``: per organisation and channel (of the active scope); else totals that name no
    organisation or channel (``pipeline_alert_families``).
    """
    if not detailed:
        return pipeline_alert_families()
    open_alerts = Family(f"{NAMESPACE}_alerts_open", "gauge", "Open alerts by state and severity.")
    for row in (
        Alert.objects.filter(state__in=Alert.ACTIVE_STATES)
        .values("state", "severity", "organization__slug")
        .annotate(n=Count("id"))
    ):
        open_alerts.add(
            row["n"], state=row["state"], severity=row["severity"], organization=row["organization__slug"]
        )
    notes = Family(
        f"{NAMESPACE}_notifications",
        "gauge",
        "Outbox rows by channel and status (suppressed = over the channel's hourly limit).",
    )
    for row in Notification.objects.values("channel__name", "status", "channel__organization__slug").annotate(
        n=Count("id")
    ):
        notes.add(
            row["n"],
            channel=row["channel__name"],
            status=row["status"],
            organization=row["channel__organization__slug"],
        )
    suppressed = Family(
        f"{NAMESPACE}_notifications_suppressed_total", "counter", "Notifications dropped by the rate limit."
    )
    failing = Family(
        f"{NAMESPACE}_channel_failing", "gauge", "1 when a channel's last delivery failed for good."
    )
    for channel in Channel.objects.select_related("organization").only(
        "name", "suppressed_count", "status", "organization__slug"
    ):
        org = channel.organization.slug
        suppressed.add(channel.suppressed_count, channel=channel.name, organization=org)
        failing.add(1 if channel.status == Channel.FAILING else 0, channel=channel.name, organization=org)
    return [open_alerts, notes, suppressed, failing]


def pipeline_alert_families() -> list[Family]:
    """Totals over every organisation: label values are fixed choices (state, severity, status) only."""
    open_alerts = Family(f"{NAMESPACE}_alerts_open", "gauge", "Open alerts by state and severity.")
    for row in (
        Alert.objects.filter(state__in=Alert.ACTIVE_STATES)
        .values("state", "severity")
        .annotate(n=Count("id"))
        .order_by("state", "severity")
    ):
        open_alerts.add(row["n"], state=row["state"], severity=row["severity"])
    notes = Family(
        f"{NAMESPACE}_notifications",
        "gauge",
        "Outbox rows by status, every channel together (suppressed = over a channel's hourly limit).",
    )
    for row in Notification.objects.values("status").annotate(n=Count("id")).order_by("status"):
        notes.add(row["n"], status=row["status"])
    figures = Channel.objects.aggregate(
        suppressed=Sum("suppressed_count"), failing=Count("id", filter=Q(status=Channel.FAILING))
    )
    suppressed = Family(
        f"{NAMESPACE}_notifications_suppressed_total",
        "counter",
        "Notifications dropped by the rate limit, every channel together.",
    ).add(figures["suppressed"] or 0)
    failing = Family(
        f"{NAMESPACE}_channels_failing", "gauge", "Channels whose last delivery failed for good."
    ).add(figures["failing"] or 0)
    return [open_alerts, notes, suppressed, failing]
