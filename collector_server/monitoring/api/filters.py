"""Filters of the hosts endpoint."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from collector_server.monitoring.models import Host

TRUE_VALUES = ("true", "1")
UP_VALUES = ("true", "false", "1", "0")


class HostFilter(django_filters.FilterSet):
    hostname = django_filters.CharFilter(lookup_expr="exact", help_text="Exact hostname.")
    hostname__icontains = django_filters.CharFilter(
        field_name="hostname", lookup_expr="icontains", help_text="Part of the hostname."
    )
    up = django_filters.ChoiceFilter(
        choices=[(v, v) for v in UP_VALUES],
        method="filter_up",
        help_text="true: hosts up; false: hosts down.",
    )

    class Meta:
        model = Host
        fields = ["hostname", "agent_version"]

    def filter_up(self, queryset: QuerySet[Host], name: str, value: str) -> QuerySet[Host]:
        if not value:
            return queryset
        cutoff = Host.up_cutoff()
        if value in TRUE_VALUES:
            return queryset.filter(last_seen__gte=cutoff)
        return queryset.filter(last_seen__lt=cutoff)
