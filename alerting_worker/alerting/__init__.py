"""Alerting: rule evaluation, lifecycle, dispatch (grouping, silences, limits), outbox delivery."""
