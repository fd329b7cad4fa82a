"""Query-string filters of the alert endpoints."""

from __future__ import annotations

from datetime import UTC

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField

from collector_server.alerts.models import SEVERITY_CHOICES, Alert, AlertEvent


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, turned into UTC: Postgres refuses UTC offsets beyond 15:59 (a 500 otherwise)."""

    def to_python(self, value):
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except (OverflowError, ValueError):
            raise forms.ValidationError(f"{value!r} is out of range once turned into UTC") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class AlertFilter(django_filters.FilterSet):
    severity = django_filters.MultipleChoiceFilter(choices=SEVERITY_CHOICES)
    state = django_filters.MultipleChoiceFilter(choices=Alert.STATE_CHOICES)
    host = django_filters.CharFilter(field_name="labels__host")
    rule = django_filters.NumberFilter(field_name="rule_id")
    name = django_filters.CharFilter(field_name="name")

    class Meta:
        model = Alert
        fields = ["severity", "state", "host", "rule", "name", "manual"]


class AlertEventFilter(django_filters.FilterSet):
    alert = django_filters.NumberFilter(field_name="alert_id")
    rule = django_filters.NumberFilter(field_name="rule_id")
    host = django_filters.CharFilter(field_name="alert__labels__host")
    to_state = django_filters.CharFilter(field_name="to_state")
    since = UtcIsoDateTimeFilter(field_name="at", lookup_expr="gte")
    until = UtcIsoDateTimeFilter(field_name="at", lookup_expr="lt")

    class Meta:
        model = AlertEvent
        fields = ["alert", "rule", "host", "to_state", "since", "until"]
