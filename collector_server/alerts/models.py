"""Alert rules, alert instances with their history, silences, channels and the notification outbox.

Validation lives in ``clean()`` so the admin and the API reject the same bad input
with a message naming the field.
"""

from __future__ import annotations

import string
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from collector_server.alerts import format_spec
from collector_server.alerts import matchers as m
from collector_server.alerts import query as q
from collector_server.orgs.scope import OrgManager, organization_field, write_organization_id

SEVERITIES = ["info", "low", "medium", "high", "critical"]
SEVERITY_CHOICES = [(s, s) for s in SEVERITIES]
# Severities of other systems (seed 004, Prometheus rules) and the fleetwatch severity they mean.
SEVERITY_ALIASES = {"warning": "medium", "error": "high", "page": "critical", "none": "info"}
COMPARISONS = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}
DEFAULT_GROUP_WAIT = 30
DEFAULT_GROUP_INTERVAL = 300
DEFAULT_REPEAT_INTERVAL = 4 * 3600
DEFAULT_RATE_LIMIT_PER_HOUR = 10


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1


def _check_template(text: str) -> None:
    for _, name, spec, _ in string.Formatter().parse(text):
        if name is not None and not name.isidentifier():
            raise ValueError(f"placeholder {{{name}}} must be a plain label name or 'value'")
        if spec and format_spec.too_wide(spec):
            raise ValueError(format_spec.too_wide(spec))


class AlertRule(models.Model):
    """A declarative rule: a query, a comparison, timers and where to send it."""

    NODATA_ALERT, NODATA_OK, NODATA_KEEP = "alert", "ok", "keep"
    NODATA_CHOICES = [(NODATA_ALERT, "alert"), (NODATA_OK, "ok"), (NODATA_KEEP, "keep last state")]

    name = models.CharField(max_length=200)
    organization = organization_field()
    description = models.TextField(blank=True)
    severity = models.CharField(max_length=10, choices=SEVERITY_CHOICES, default="medium")
    enabled = models.BooleanField(default=True)
    query_type = models.CharField(max_length=50, default="metric")
    query = models.JSONField(default=dict, help_text="See docs/alerting.md for each query type's fields.")
    comparison = models.CharField(max_length=2, choices=[(c, c) for c in COMPARISONS], default=">")
    threshold = models.FloatField()
    recovery_threshold = models.FloatField(
        null=True,
        blank=True,
        help_text="Hysteresis: a firing alert resolves only once the value crosses this.",
    )
    for_seconds = models.PositiveIntegerField(default=0, help_text="Pending this long before firing.")
    keep_firing_for_seconds = models.PositiveIntegerField(default=0)
    nodata_policy = models.CharField(max_length=5, choices=NODATA_CHOICES, default=NODATA_KEEP)
    nodata_timeout_seconds = models.PositiveIntegerField(default=300)
    labels = models.JSONField(default=dict, blank=True)
    annotations = models.JSONField(
        default=dict, blank=True, help_text='Templates such as {"summary": "CPU on {host} is {value:.1f}%"}.'
    )
    channels = models.ManyToManyField("Channel", blank=True, related_name="rules")
    repeat_interval_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Overrides the channel's repeat interval; blank: the channel's (then ALERT_COOLDOWN_PERIOD).",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrgManager()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="rule_org_name_uniq")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        try:
            self.query = q.get(self.query_type).validate(self.query)
        except ValueError as exc:
            errors["query_type" if self.query_type not in q.REGISTRY else "query"] = str(exc)
        if self.comparison not in COMPARISONS:
            errors["comparison"] = f"unknown comparison {self.comparison!r}"
        elif (
            self.recovery_threshold is not None
            and self.threshold is not None
            and not self._recovery_side_ok()
        ):
            errors["recovery_threshold"] = (
                f"must be on the healthy side of the threshold ({self.comparison} {self.threshold} breaches)"
            )
        if self.for_seconds and self.for_seconds < settings.ALERT_CHECK_INTERVAL:
            errors["for_seconds"] = (
                f"{self.for_seconds}s is shorter than the evaluation interval "
                f"({settings.ALERT_CHECK_INTERVAL}s); use 0 or at least the interval"
            )
        if self.severity not in SEVERITIES:
            errors["severity"] = f"unknown severity {self.severity!r} (use one of {', '.join(SEVERITIES)})"
        errors.update(self._clean_maps())
        if errors:
            raise ValidationError(errors)

    def _recovery_side_ok(self) -> bool:
        if self.comparison in (">", ">="):
            return self.recovery_threshold <= self.threshold
        if self.comparison in ("<", "<="):
            return self.recovery_threshold >= self.threshold
        return True

    def _clean_maps(self) -> dict[str, str]:
        errors = {}
        for name in ("labels", "annotations"):
            value = getattr(self, name)
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                errors[name] = "must be an object of strings"
                continue
            try:
                for text in value.values():
                    _check_template(text)
            except ValueError as exc:
                errors[name] = str(exc)
        return errors

    def breaches(self, value: float, firing: bool) -> bool:
        """Return whether ``value`` keeps (or puts) the rule in alert; hysteresis applies when firing."""
        compare = COMPARISONS[self.comparison]
        if firing and self.recovery_threshold is not None:
            healthy = COMPARISONS[{">": "<", ">=": "<=", "<": ">", "<=": ">="}.get(self.comparison, "!=")]
            return not healthy(value, self.recovery_threshold)
        return compare(value, self.threshold)

    def evaluate_now(self, now: datetime | None = None) -> q.QueryResult:
        """Run the rule's query now (used by the admin's preview)."""
        query = q.get(self.query_type).validate(self.query)
        return q.get(self.query_type).evaluate(query, now or timezone.now(), self.nodata_timeout_seconds)


class Alert(models.Model):
    """One episode of a rule for one label set: pending → firing → resolved (or pending → inactive)."""

    INACTIVE, PENDING, FIRING, RESOLVED = "inactive", "pending", "firing", "resolved"
    FLEETWATCH, ALERTMANAGER = "fleetwatch", "alertmanager"
    STATE_CHOICES = [(s, s) for s in (INACTIVE, PENDING, FIRING, RESOLVED)]
    ACTIVE_STATES = (PENDING, FIRING)

    rule = models.ForeignKey(
        AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    organization = organization_field()
    name = models.CharField(max_length=200, db_index=True)
    labels = models.JSONField(default=dict)
    labels_key = models.TextField()
    severity = models.CharField(max_length=10, choices=SEVERITY_CHOICES)
    state = models.CharField(max_length=10, choices=STATE_CHOICES, db_index=True)
    value = models.FloatField(null=True, blank=True)
    summary = models.TextField(blank=True)
    description = models.TextField(blank=True)
    annotations = models.JSONField(default=dict, blank=True)
    manual = models.BooleanField(default=False)
    source = models.CharField(
        max_length=20,
        choices=[("fleetwatch", "fleetwatch"), ("alertmanager", "alertmanager")],
        default="fleetwatch",
        help_text="alertmanager: received from an Alertmanager's webhook, shown read-only.",
    )
    created_by = models.CharField(max_length=150, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    fired_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    last_breach_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    acknowledged_by = models.CharField(max_length=150, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    ack_comment = models.TextField(blank=True)
    resolved_by = models.CharField(max_length=150, blank=True)
    silenced = models.BooleanField(default=False)
    inhibited = models.BooleanField(default=False)
    flapping = models.BooleanField(default=False)

    objects = OrgManager()

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            # At most one open episode per rule and label set: concurrent evaluators cannot both create it.
            models.UniqueConstraint(
                fields=["organization", "source", "name", "labels_key"],
                condition=models.Q(state__in=["pending", "firing"]),
                name="alert_one_open_episode",
            )
        ]
        indexes = [models.Index(fields=["rule", "labels_key"])]

    def __str__(self) -> str:
        return f"{self.name} {{{self.labels_key}}} {self.state}"

    @property
    def host(self) -> str:
        return str(self.labels.get("host", ""))

    @property
    def display_state(self) -> str:
        if self.state == self.FIRING and self.silenced:
            return "silenced"
        if self.state == self.FIRING and self.acknowledged_at:
            return "acknowledged"
        return self.state

    @property
    def fingerprint(self) -> str:
        """fleetwatch's own key of the alert's series (group state refers to it)."""
        return f"{self.name}|{self.labels_key}"

    @property
    def label_fingerprint(self) -> str:
        """Alertmanager's fingerprint of the alert's labels (16 hex digits)."""
        from collector_server.alerts.fingerprint import label_fingerprint

        return label_fingerprint({k: str(v) for k, v in self.labels.items()})


class AlertEvent(models.Model):
    """A transition of an alert (or an operator action), with the value that caused it."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events")
    rule = models.ForeignKey(AlertRule, null=True, blank=True, on_delete=models.SET_NULL)
    labels_key = models.TextField(blank=True)
    from_state = models.CharField(max_length=12, blank=True)
    to_state = models.CharField(max_length=12)
    value = models.FloatField(null=True, blank=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.CharField(max_length=150, blank=True)
    note = models.TextField(blank=True)

    objects = OrgManager("alert__organization")

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["rule", "labels_key", "at"])]

    def __str__(self) -> str:
        return f"{self.alert_id}: {self.from_state} → {self.to_state}"


class Silence(models.Model):
    """Mute notifications of matching alerts for a time, optionally every week in a window."""

    organization = organization_field()
    matchers = models.JSONField(default=list, help_text='[{"name": "host", "op": "=", "value": "web-1"}]')
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Required unless the silence recurs.")
    recurrence_days = models.JSONField(
        default=list, blank=True, help_text="Weekdays of a maintenance window, 0=Monday … 6=Sunday."
    )
    window_start = models.TimeField(null=True, blank=True, help_text="UTC start time of the weekly window.")
    window_minutes = models.PositiveIntegerField(null=True, blank=True)
    created_by = models.CharField(max_length=150, blank=True)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = OrgManager()

    class Meta:
        ordering = ["-starts_at"]

    def __str__(self) -> str:
        return f"silence {self.pk}: {self.comment[:40]}"

    def clean(self) -> None:
        errors = {}
        try:
            self.matchers = m.normalize(self.matchers)
            if not self.matchers:
                errors["matchers"] = "at least one matcher is required"
        except ValueError as exc:
            errors["matchers"] = str(exc)
        if self.recurrence_days:
            days = self.recurrence_days
            if not isinstance(days, list) or not all(isinstance(d, int) and 0 <= d <= 6 for d in days):
                errors["recurrence_days"] = "must be a list of weekdays 0 (Monday) … 6 (Sunday)"
            if self.window_start is None:
                errors["window_start"] = "required for a recurring silence"
            if not self.window_minutes or self.window_minutes > 7 * 1440:
                errors["window_minutes"] = "required for a recurring silence (1 … 10080)"
        elif self.ends_at is None:
            errors["ends_at"] = "required unless the silence recurs"
        elif self.starts_at and self.ends_at <= self.starts_at:
            errors["ends_at"] = "must be after starts_at"
        if errors:
            raise ValidationError(errors)

    def is_active(self, now: datetime) -> bool:
        if now < self.starts_at or (self.ends_at is not None and now >= self.ends_at):
            return False
        if not self.recurrence_days:
            return True
        # A window may have started on any of the days it can span (up to 7 days, 10080 min),
        # plus one for a start time late in the day: look back that many days.
        for back in range((self.window_minutes or 0) // 1440 + 2):
            day = (now - timedelta(days=back)).date()
            if day.weekday() not in self.recurrence_days:
                continue
            start = datetime.combine(day, self.window_start, tzinfo=now.tzinfo)
            if start <= now < start + timedelta(minutes=self.window_minutes):
                return True
        return False

    def matches(self, labels: dict[str, Any]) -> bool:
        return m.matches(m.normalize(self.matchers), labels)


class Channel(models.Model):
    """A place notifications go: email, Slack, a generic webhook, PagerDuty or an Alertmanager."""

    EMAIL, SLACK, WEBHOOK, PAGERDUTY = "email", "slack", "webhook", "pagerduty"
    ALERTMANAGER = "alertmanager"
    KIND_CHOICES = [(k, k) for k in (EMAIL, SLACK, WEBHOOK, PAGERDUTY, ALERTMANAGER)]
    OK, FAILING = "ok", "failing"

    name = models.CharField(max_length=200)
    organization = organization_field()
    kind = models.CharField(max_length=20, choices=KIND_CHOICES)
    config = models.JSONField(
        default=dict, help_text="Kind-specific settings; secrets are never shown by the API."
    )
    enabled = models.BooleanField(default=True)
    is_default = models.BooleanField(
        default=False, help_text="Used by rules without channels and manual alerts."
    )
    fallback = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL)
    group_by = models.JSONField(
        default=list, blank=True, help_text='Labels grouping alerts, e.g. ["alertname"].'
    )
    group_wait_seconds = models.PositiveIntegerField(default=DEFAULT_GROUP_WAIT)
    group_interval_seconds = models.PositiveIntegerField(default=DEFAULT_GROUP_INTERVAL)
    repeat_interval_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        default=DEFAULT_REPEAT_INTERVAL,
        help_text="Blank: the ALERT_COOLDOWN_PERIOD setting (4 h when that is 0).",
    )
    rate_limit_per_hour = models.PositiveIntegerField(
        default=DEFAULT_RATE_LIMIT_PER_HOUR, help_text="0: no limit"
    )
    suppressed_count = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, default=OK, choices=[(OK, OK), (FAILING, FAILING)])
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = OrgManager()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="channel_org_name_uniq")]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    @property
    def effective_repeat_seconds(self) -> int:
        """Return the repeat interval: the channel's own, else ALERT_COOLDOWN_PERIOD, else 4 h."""
        if self.repeat_interval_seconds is not None:
            return self.repeat_interval_seconds
        return settings.ALERT_COOLDOWN_PERIOD or DEFAULT_REPEAT_INTERVAL

    def clean(self) -> None:
        from alerting_worker.alerting import transports

        errors = {}
        if not isinstance(self.config or {}, dict):
            raise ValidationError({"config": "must be an object of the kind's settings"})
        try:
            if not isinstance(self.config or {}, dict):
                raise ValueError(f"must be an object, not {type(self.config).__name__}")
            self.config = transports.get(self.kind).validate_config(self.config or {})
        except ValueError as exc:
            errors["kind" if self.kind not in transports.REGISTRY else "config"] = str(exc)
        else:
            errors.update(self._clean_alertmanager_ttl())
        if not isinstance(self.group_by, list) or not all(isinstance(x, str) for x in self.group_by):
            errors["group_by"] = "must be a list of label names"
        if self.fallback_id is not None:
            problem = self._fallback_loop()
            if problem:
                errors["fallback"] = problem
        if errors:
            raise ValidationError(errors)

    def _clean_alertmanager_ttl(self) -> dict[str, str]:
        """An Alertmanager forgets a firing alert at its endsAt: it must outlive the repeat interval."""
        if self.kind != self.ALERTMANAGER:
            return {}
        repeat = self.effective_repeat_seconds
        ttl = self.config.setdefault("ttl_seconds", 3 * repeat)
        if ttl <= repeat:
            return {"config": f"ttl_seconds ({ttl}) must exceed the repeat interval ({repeat}s)"}
        return {}

    def _fallback_loop(self) -> str:
        """Follow the fallback chain as it would be saved; describe a loop in it, or return ""."""
        if self.pk is not None and self.fallback_id == self.pk:
            return "a channel cannot be its own fallback"
        names = [self.name or "this channel"]
        seen = {self.pk} if self.pk is not None else set()
        current = self.fallback_id
        while current is not None:
            row = Channel.objects.filter(pk=current).values_list("name", "fallback_id").first()
            if row is None:
                return ""
            names.append(row[0])
            if current in seen:
                where = "back to this channel" if current == self.pk else "in a loop"
                return (
                    f"the fallback chain {' → '.join(names)} leads {where}; fallbacks must not form a cycle"
                )
            seen.add(current)
            current = row[1]
        return ""


class NotificationGroup(models.Model):
    """Dispatcher state of one alert group on one channel (Alertmanager's aggregation group)."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="groups")
    key = models.TextField()
    labels = models.JSONField(default=dict)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    notified = models.JSONField(default=list, help_text="Fingerprints of the alerts last told firing.")
    flapping_told = models.JSONField(default=list, help_text="Fingerprints already told as flapping.")
    sends = models.PositiveIntegerField(default=0)
    route = models.ForeignKey(
        "Route",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        help_text="Blank: the channel's own grouping.",
    )

    objects = OrgManager("channel__organization")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["channel", "key"], name="group_channel_key_uniq")]


class Notification(models.Model):
    """The outbox: one message to one channel, written in the transaction that decided it."""

    PENDING, SENDING, SENT, FAILED, SUPPRESSED = "pending", "sending", "sent", "failed", "suppressed"
    STATUS_CHOICES = [(s, s) for s in (PENDING, SENDING, SENT, FAILED, SUPPRESSED)]

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="notifications")
    idempotency_key = models.CharField(max_length=200, unique=True)
    group_key = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=PENDING, db_index=True)
    payload = models.JSONField(help_text="Status, group labels and the alerts, as sent.")
    attempts = models.PositiveIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    objects = OrgManager("channel__organization")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.idempotency_key} {self.status}"


class DeliveryAttempt(models.Model):
    """The ledger: every try to deliver a notification, with its outcome."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="delivery_attempts")
    at = models.DateTimeField(default=timezone.now)
    duration_ms = models.FloatField(default=0)
    ok = models.BooleanField(default=False)
    permanent = models.BooleanField(default=False)
    response = models.TextField(blank=True)

    objects = OrgManager("notification__channel__organization")

    class Meta:
        ordering = ["-at"]


class EscalationPolicy(models.Model):
    """Steps notified one after the other while a firing alert is not acknowledged (PagerDuty-style)."""

    name = models.CharField(max_length=200)
    organization = organization_field()
    description = models.TextField(blank=True)

    objects = OrgManager()

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "escalation policies"
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="escalation_org_name_uniq")
        ]

    def __str__(self) -> str:
        return self.name


class EscalationStep(models.Model):
    """Notify ``channel`` once the alert has gone ``delay_minutes`` unacknowledged since the previous step."""

    policy = models.ForeignKey(EscalationPolicy, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField(default=0, help_text="Steps run in this order.")
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="escalation_steps")
    delay_minutes = models.PositiveIntegerField(
        default=0, help_text="Minutes after the previous step (after firing for the first step)."
    )

    objects = OrgManager("policy__organization")

    class Meta:
        ordering = ["policy", "position", "id"]

    def __str__(self) -> str:
        return f"{self.policy.name} #{self.position}: {self.channel.name} after {self.delay_minutes} min"


class Route(models.Model):
    """A node of the routing tree, with Alertmanager's semantics (docs/alerting.md, "Routing tree").

    The root (no parent) takes every alert; an alert descends into the first child whose
    matchers accept it, and on into later siblings only while the matched child has
    ``continue_matching``; the deepest matching nodes notify their receiver. Blank settings
    (receiver, grouping, timers) are the parent's.
    """

    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    organization = organization_field()
    position = models.PositiveIntegerField(default=0, help_text="Order among the parent's children.")
    name = models.CharField(max_length=200, blank=True)
    matchers = models.JSONField(
        default=list, blank=True, help_text='[{"name": "team", "op": "=", "value": "db"}]; the root has none.'
    )
    channel = models.ForeignKey(
        Channel,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="routes",
        help_text="Receiver.",
    )
    continue_matching = models.BooleanField(
        default=False, help_text="Alertmanager's `continue`: after matching here, try the next siblings too."
    )
    group_by = models.JSONField(null=True, blank=True, help_text="Blank: the parent's (root: alertname).")
    group_wait_seconds = models.PositiveIntegerField(null=True, blank=True)
    group_interval_seconds = models.PositiveIntegerField(null=True, blank=True)
    repeat_interval_seconds = models.PositiveIntegerField(null=True, blank=True)
    escalation = models.ForeignKey(
        EscalationPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="routes"
    )
    rule = models.ForeignKey(
        AlertRule,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="routes",
        help_text="Set on the routes kept in step with a rule's channel list.",
    )
    generated = models.BooleanField(
        default=False,
        help_text="Kept in step with the rules' channel lists and the default channels (rebuilt on change).",
    )

    objects = OrgManager()

    class Meta:
        ordering = ["parent_id", "position", "id"]

    def __str__(self) -> str:
        return self.name or f"route {self.pk}"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        try:
            self.matchers = m.normalize(self.matchers)
        except ValueError as exc:
            errors["matchers"] = str(exc)
        if self.parent_id is None:
            if self.matchers:
                errors["matchers"] = "the root route matches every alert: it takes no matchers"
            org_id = self.organization_id or write_organization_id()
            roots = Route.objects.filter(parent__isnull=True, organization_id=org_id).exclude(pk=self.pk)
            if roots.exists():
                errors["parent"] = "there is already a root route; give this one a parent"
        elif self.organization_id is not None and self.parent.organization_id != self.organization_id:
            errors["parent"] = "the parent route belongs to another organisation"
        elif self.pk is not None and self._descends_from_itself():
            errors["parent"] = "a route cannot be inside itself"
        if self.group_by is not None and (
            not isinstance(self.group_by, list) or not all(isinstance(x, str) for x in self.group_by)
        ):
            errors["group_by"] = "must be a list of label names"
        if errors:
            raise ValidationError(errors)

    def _descends_from_itself(self) -> bool:
        seen, current = set(), self.parent_id
        while current is not None and current not in seen:
            if current == self.pk:
                return True
            seen.add(current)
            current = Route.objects.filter(pk=current).values_list("parent_id", flat=True).first()
        return False


class EscalationState(models.Model):
    """Where one alert is in its escalation: the next step and when it is due, who was told."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="escalations")
    policy = models.ForeignKey(EscalationPolicy, on_delete=models.CASCADE, related_name="states")
    next_step = models.PositiveIntegerField(default=0)
    next_at = models.DateTimeField(null=True, blank=True, help_text="Blank: no further step.")
    notified_channels = models.JSONField(default=list, help_text="Ids of the channels told it fired.")
    stopped_reason = models.CharField(max_length=20, blank=True)
    resolved_told = models.BooleanField(default=False)

    objects = OrgManager("alert__organization")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["alert", "policy"], name="escalation_alert_policy_uniq")
        ]
