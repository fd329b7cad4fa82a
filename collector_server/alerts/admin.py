"""Admin for rules (with a live preview), alerts, silences, channels (with a test send) and the outbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from alerting_worker.alerting import notify_test
from collector_server.alerts import log_query
from collector_server.alerts.api.views import preview_rule
from collector_server.alerts.models import (
    Alert,
    AlertEvent,
    AlertRule,
    Channel,
    DeliveryAttempt,
    Notification,
    Silence,
)
from collector_server.orgs import audit, roles
from collector_server.orgs.admin_scope import OrganizationAdminMixin

PREVIEW_LIMIT = 50
# The submit button on the rule form: validate and evaluate the rule as edited, save nothing.
PREVIEW_KEY = "_preview"


@dataclass
class PreviewRow:
    group: str
    value: str
    outcome: str


@dataclass
class RulePreview:
    """What an unsaved rule sees now: one row per group (the first PREVIEW_LIMIT), or the error."""

    rows: list[PreviewRow] = field(default_factory=list)
    total: int = 0
    error: str = ""


def _outcome(rule: AlertRule, breaches: bool | None) -> str:
    if breaches is None:
        return "no data"
    if not breaches:
        return "ok"
    return f"would fire after {rule.for_seconds}s pending" if rule.for_seconds else "would fire"


def preview_unsaved(rule: AlertRule) -> RulePreview:
    """Evaluate a validated rule that is not saved, with the API's preview code."""
    try:
        with transaction.atomic():  # a failing query must not break the admin's own transaction
            groups = preview_rule(rule)
    except Exception as exc:  # shown to the operator instead of a server error
        return RulePreview(error=str(exc))
    groups.sort(key=lambda g: str(g["labels"]))
    rows = [
        PreviewRow(
            group=", ".join(f"{k}={v}" for k, v in g["labels"].items()) or "(all)",
            value="no data" if g["value"] is None else f"{g['value']:.4g}",
            outcome=_outcome(rule, g["breaches"]),
        )
        for g in groups[:PREVIEW_LIMIT]
    ]
    return RulePreview(rows=rows, total=len(groups))


class PreviewOnValid:
    """Mixed into the rule form when "Preview (evaluate now)" was pressed.

    Once the form is valid (the same ``AlertRule.clean()`` as a save), the rule as edited is
    evaluated into ``rule_preview`` and ``is_valid()`` answers False, so the admin renders the
    form again, with the preview, instead of saving.
    """

    rule_preview: RulePreview | None = None
    instance: AlertRule

    def is_valid(self) -> bool:
        if not super().is_valid():  # type: ignore[misc]
            return False
        self.rule_preview = preview_unsaved(self.instance)
        return False


@admin.register(AlertRule)
class AlertRuleAdmin(OrganizationAdminMixin, admin.ModelAdmin):
    list_display = ["name", "severity", "enabled", "query_type", "comparison", "threshold", "for_seconds"]
    list_filter = ["enabled", "severity", "query_type"]
    search_fields = ["name", "description"]
    filter_horizontal = ["channels"]
    readonly_fields = ["evaluate_now"]

    def get_form(
        self, request: HttpRequest, obj: AlertRule | None = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        form = super().get_form(request, obj, change, **kwargs)
        if request.method == "POST" and PREVIEW_KEY in request.POST:
            return type(form.__name__, (PreviewOnValid, form), {})
        return form

    @admin.display(description="Evaluate now (current value per group)")
    def evaluate_now(self, rule: AlertRule) -> str:
        """Show what the saved rule sees right now, so an operator can check it before relying on it."""
        if rule.pk is None:
            return "Press “Preview (evaluate now)” below to see the current values without saving."
        try:
            with transaction.atomic():  # a failing query must not break the admin's own transaction
                result = rule.evaluate_now()
        except Exception as exc:  # shown to the operator instead of a server error
            return f"cannot evaluate: {exc}"
        rows = sorted(result.groups.values(), key=lambda g: str(g.labels))[:PREVIEW_LIMIT]
        if not rows:
            return "no matching series"
        return format_html(
            "<table><tr><th>group</th><th>value</th><th>breaches</th></tr>{}</table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (
                        ", ".join(f"{k}={v}" for k, v in g.labels.items()) or "(all)",
                        "no data" if g.value is None else f"{g.value:.4g}",
                        "" if g.value is None else ("yes" if rule.breaches(g.value, firing=False) else "no"),
                    )
                    for g in rows
                ),
            ),
        )


class AlertEventInline(admin.TabularInline):
    model = AlertEvent
    extra = 0
    can_delete = False
    fields = ["at", "from_state", "to_state", "value", "actor", "note"]
    readonly_fields = fields


@admin.register(Alert)
class AlertAdmin(OrganizationAdminMixin, admin.ModelAdmin):
    change_role = roles.OPERATOR
    list_display = [
        "name",
        "labels_key",
        "severity",
        "display_state",
        "value",
        "started_at",
        "acknowledged_by",
    ]
    list_filter = ["state", "severity", "silenced", "inhibited", "flapping", "manual"]
    search_fields = ["name", "labels_key", "summary"]
    readonly_fields = [f.name for f in Alert._meta.fields] + ["log_records"]
    inlines = [AlertEventInline]
    actions = ["acknowledge"]

    @admin.display(description="log records")
    def log_records(self, alert: Alert) -> str:
        """Link a log_count alert to the records of its last breached window."""
        url = log_query.alert_logs_url(alert)
        if url is None:
            return "-"
        return format_html('<a href="{}">records of the last breached window</a>', url)

    @admin.action(description="Acknowledge the selected firing alerts", permissions=["change"])
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        now, actor = timezone.now(), request.user.get_username()
        for alert in queryset.filter(state=Alert.FIRING, acknowledged_at__isnull=True):
            if Alert.objects.filter(pk=alert.pk, state=Alert.FIRING).update(
                acknowledged_by=actor, acknowledged_at=now
            ):
                AlertEvent.objects.create(
                    alert=alert, rule_id=alert.rule_id, labels_key=alert.labels_key, from_state=Alert.FIRING,
                    to_state="acknowledged", value=alert.value, at=now, actor=actor,
                )  # fmt: skip
                audit.record("acknowledge", alert, {"acknowledged_by": ["", actor]})
        messages.success(request, "Acknowledged.")


@admin.register(Silence)
class SilenceAdmin(OrganizationAdminMixin, admin.ModelAdmin):
    change_role = roles.OPERATOR
    list_display = ["id", "comment", "starts_at", "ends_at", "recurrence_days", "created_by", "active_now"]
    readonly_fields = ["created_by", "created_at"]

    @admin.display(boolean=True, description="active")
    def active_now(self, silence: Silence) -> bool:
        return silence.is_active(timezone.now())

    def save_model(self, request: HttpRequest, obj: Silence, form: object, change: bool) -> None:
        if not change:
            obj.created_by = request.user.get_username()
        super().save_model(request, obj, form, change)


@admin.register(Channel)
class ChannelAdmin(OrganizationAdminMixin, admin.ModelAdmin):
    list_display = ["name", "kind", "enabled", "is_default", "status_badge", "suppressed_count", "last_error"]
    list_filter = ["kind", "enabled", "status"]
    readonly_fields = ["status", "last_error", "suppressed_count"]
    actions = ["send_test_notification"]

    @admin.display(description="status")
    def status_badge(self, channel: Channel) -> str:
        color = "#c00" if channel.status == Channel.FAILING else "#070"
        return format_html('<b style="color:{}">{}</b>', color, channel.status)

    @admin.action(description="Send test notification (queued to the worker)", permissions=["change"])
    def send_test_notification(self, request: HttpRequest, queryset: QuerySet[Channel]) -> None:
        for channel in queryset:
            note = notify_test.queue_test(channel)
            self.message_user(
                request,
                f"Test notification to {channel.name} queued (notification {note.pk}: its outcome "
                "shows under Notifications)",
                messages.SUCCESS,
            )


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ["at", "duration_ms", "ok", "permanent", "response"]
    readonly_fields = fields


@admin.register(Notification)
class NotificationAdmin(OrganizationAdminMixin, admin.ModelAdmin):
    list_display = ["idempotency_key", "channel", "status", "attempts", "created_at", "sent_at"]
    list_filter = ["status", "channel"]
    readonly_fields = [f.name for f in Notification._meta.fields]
    inlines = [DeliveryAttemptInline]


from collector_server.alerts import routing_admin  # noqa: E402, F401  (registers Route, EscalationPolicy)
