"""Admin for hosts and series; rollups, samples and batch identities shown read-only on their pages.

Django 5.2's admin cannot register models with a composite primary key (Sample, the rollups,
IngestedBatch), so the Series page lists its latest samples and rollups and the Host page
lists the agent's latest ingested batches.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse

from collector_server.monitoring import host_refusals
from collector_server.monitoring.models import (
    Host,
    IngestedBatch,
    Rollup1h,
    Rollup1m,
    RollupState,
    Sample,
    Series,
)
from collector_server.orgs.admin_scope import OrganizationAdminMixin

RECENT_ROWS = 30


class UpFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "up"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("1", "up"), ("0", "down")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Host]) -> QuerySet[Host]:
        cutoff = Host.up_cutoff()
        if self.value() == "1":
            return queryset.filter(last_seen__gte=cutoff)
        if self.value() == "0":
            return queryset.filter(last_seen__lt=cutoff)
        return queryset


@admin.register(Host)
class HostAdmin(OrganizationAdminMixin, admin.ModelAdmin):
    list_display = [
        "hostname",
        "agent_id",
        "agent_version",
        "is_up",
        "last_seen",
        "first_seen",
        "series_count",
    ]
    list_filter = [UpFilter, "agent_version"]
    search_fields = ["hostname", "agent_id"]
    readonly_fields = ["first_seen", "last_seen"]
    change_form_template = "admin/monitoring/host/change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Host]:
        return super().get_queryset(request).annotate(n_series=Count("series"))

    @admin.display(boolean=True, description="up")
    def is_up(self, obj: Host) -> bool:
        return obj.is_up

    @admin.display(ordering="n_series", description="series")
    def series_count(self, obj: Host) -> int:
        return obj.n_series

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        host = self.get_object(request, object_id)
        batches = []
        if host is not None:
            batches = list(
                IngestedBatch.objects.filter(agent_id=host.agent_id).order_by("-received_at")[:RECENT_ROWS]
            )
        refusals = host_refusals.counts_for(host.agent_id) if host is not None else {}
        context = {**(extra_context or {}), "recent_batches": batches, "limit_refusals": refusals}
        return super().change_view(request, object_id, form_url, extra_context=context)


@admin.register(Series)
class SeriesAdmin(OrganizationAdminMixin, admin.ModelAdmin):
    # Workers cache series ids; a deleted series would keep receiving samples no query joins.
    # Data leaves by retention, not by hand.

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    list_display = ["name", "kind", "labels_key", "host", "created_at"]
    list_filter = ["kind", "host"]
    search_fields = ["name", "labels_key"]
    list_select_related = ["host"]
    raw_id_fields = ["host"]
    readonly_fields = ["created_at"]
    change_form_template = "admin/monitoring/series/change_form.html"

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        series = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if series is not None:
            context.update(
                recent_samples=list(Sample.objects.filter(series=series).order_by("-ts")[:RECENT_ROWS]),
                recent_rollups_1m=list(
                    Rollup1m.objects.filter(series=series).order_by("-bucket")[:RECENT_ROWS]
                ),
                recent_rollups_1h=list(
                    Rollup1h.objects.filter(series=series).order_by("-bucket")[:RECENT_ROWS]
                ),
            )
        return super().change_view(request, object_id, form_url, extra_context=context)


@admin.register(RollupState)
class RollupStateAdmin(admin.ModelAdmin):
    list_display = ["level", "done_until"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: RollupState | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: RollupState | None = None) -> bool:
        return False
