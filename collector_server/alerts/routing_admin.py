"""Admin for the routing tree and the escalation policies (imported by admin.py)."""

from __future__ import annotations

from django.contrib import admin

from collector_server.alerts.models import EscalationPolicy, EscalationStep, Route
from collector_server.orgs.admin_scope import OrganizationAdminMixin


@admin.register(Route)
class RouteAdmin(OrganizationAdminMixin, admin.ModelAdmin):
    list_display = ("__str__", "parent", "position", "matchers", "channel", "continue_matching", "generated")
    list_filter = ("generated", "channel")
    search_fields = ("name",)
    readonly_fields = ("rule", "generated")
    fields = (
        "organization",
        "parent",
        "position",
        "name",
        "matchers",
        "channel",
        "continue_matching",
        "group_by",
        "group_wait_seconds",
        "group_interval_seconds",
        "repeat_interval_seconds",
        "escalation",
        "rule",
        "generated",
    )


class EscalationStepInline(OrganizationAdminMixin, admin.TabularInline):
    model = EscalationStep
    extra = 1
    fields = ("position", "channel", "delay_minutes")


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(OrganizationAdminMixin, admin.ModelAdmin):
    list_display = ("name", "description")
    fields = ("organization", "name", "description")
    inlines = [EscalationStepInline]
