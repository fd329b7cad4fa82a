"""Query-string filters of the alert endpoints."""

from __future__ import annotations

import django_filters

from collector_server.alerts.models import SEVERITY_CHOICES, Alert, AlertEvent


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
    since = django_filters.IsoDateTimeFilter(field_name="at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="at", lookup_expr="lt")

    class Meta:
        model = AlertEvent
        fields = ["alert", "rule", "host", "to_state", "since", "until"]
