"""Default rules (from the seed documents) and default channels created from environment settings."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError

log = logging.getLogger(__name__)

TOTAL_CPU = [{"name": "core", "op": "=", "value": ""}]


def _metric(metric: str, aggregation: str, window: int, group_by: list[str], matchers: Any = None) -> dict:
    return {
        "metric": metric,
        "matchers": matchers or [],
        "aggregation": aggregation,
        "window": window,
        "group_by": group_by,
    }


DEFAULT_RULES: list[dict[str, Any]] = [
    {
        "name": "High CPU Usage",
        "description": "CPU usage is consistently high",
        "severity": "high",
        "query_type": "metric",
        "query": _metric("system_cpu_usage_percent", "avg", 60, ["host"], TOTAL_CPU),
        "comparison": ">",
        "threshold": 80,
        "for_seconds": 300,
        "annotations": {"summary": "CPU on {host} is {value:.1f}%"},
    },
    {
        "name": "Critical Memory Usage",
        "description": "Memory usage is critically high",
        "severity": "critical",
        "query_type": "metric",
        "query": _metric("system_memory_usage_percent", "avg", 60, ["host"]),
        "comparison": ">",
        "threshold": 90,
        "for_seconds": 180,
        "annotations": {"summary": "Memory on {host} is {value:.1f}%"},
    },
    {
        "name": "High API Error Rate",
        "description": "More than 10% of API requests fail",
        "severity": "high",
        "query_type": "ratio",
        "query": {
            "numerator": _metric("http_request_errors_total", "increase", 300, []),
            "denominator": _metric("http_requests_total", "increase", 300, []),
            "scale": 100,
            "group_by": ["service"],
        },
        "comparison": ">",
        "threshold": 10,
        "for_seconds": 300,
        "nodata_policy": "ok",
        "annotations": {"summary": "Error rate of {service} is {value:.1f}%"},
    },
    {
        "name": "Slow Response Times",
        "description": "Average response time above 5 seconds",
        "severity": "medium",
        "query_type": "ratio",
        "query": {
            "numerator": _metric("http_request_duration_seconds_sum", "increase", 300, []),
            "denominator": _metric("http_request_duration_seconds_count", "increase", 300, []),
            "scale": 1,
            "group_by": ["service"],
        },
        "comparison": ">",
        "threshold": 5,
        "for_seconds": 600,
        "nodata_policy": "ok",
        "annotations": {"summary": "Average response time of {service} is {value:.2f}s"},
    },
    {
        "name": "Low Disk Space",
        "description": "Disk usage above 85%",
        "severity": "high",
        "query_type": "metric",
        "query": _metric("system_disk_usage_percent", "avg", 60, ["host", "mountpoint"]),
        "comparison": ">",
        "threshold": 85,
        "for_seconds": 300,
        "annotations": {"summary": "Disk {mountpoint} on {host} is {value:.1f}% full"},
    },
    {
        "name": "System Unavailability",
        "description": "No requests for 15 minutes",
        "severity": "critical",
        "query_type": "metric",
        "query": _metric("http_requests_total", "increase", 900, ["service"]),
        "comparison": "<=",
        "threshold": 0,
        "for_seconds": 0,
        "nodata_policy": "alert",
        "nodata_timeout_seconds": 900,
        "annotations": {"summary": "{service} has served no requests for 15 minutes"},
    },
    {
        "name": "Host Down",
        "description": "No data from an agent for 2 minutes",
        "severity": "critical",
        "query_type": "host_down",
        "query": {"matchers": []},
        "comparison": ">",
        "threshold": 120,
        "for_seconds": 0,
        "annotations": {"summary": "No data from {host} for {value:.0f}s"},
    },
]


# The rule sets every organisation starts with: the seed's, and those other apps register
# (the inference rules, collector_server.inference). Created at an organisation's creation,
# deleted with it (signals).
RULE_SETS: list[list[dict[str, Any]]] = [DEFAULT_RULES]


def register_rule_set(specs: list[dict[str, Any]]) -> None:
    if not any(specs is known for known in RULE_SETS):
        RULE_SETS.append(specs)


def create_missing_rules(
    organization_id: int, specs: list[dict[str, Any]], rule_model: Any = None
) -> list[str]:
    """Create the rules of ``specs`` missing in one organisation; return the names created.

    Only a name that is missing is created, so an operator's edits are never redone. A migration
    passes its historical model as ``rule_model``.
    """
    from collector_server.orgs import scope

    if rule_model is None:
        from collector_server.alerts.models import AlertRule as rule_model
    created = []
    with scope.use_scope(None):  # whoever creates the organisation, the rules are filed under it
        for spec in specs:
            _, new = rule_model.objects.get_or_create(
                organization_id=organization_id, name=spec["name"], defaults={**spec}
            )
            if new:
                created.append(spec["name"])
    return created


def ensure_default_rules(organization_id: int) -> list[str]:
    """Create every registered default rule missing in one organisation (at its creation)."""
    return [name for specs in RULE_SETS for name in create_missing_rules(organization_id, specs)]


def delete_default_rules(organization_id: int) -> None:
    """Delete the organisation's rules named as a default (before the organisation itself)."""
    from collector_server.alerts.models import AlertRule
    from collector_server.orgs import scope

    names = [spec["name"] for specs in RULE_SETS for spec in specs]
    with scope.use_scope(None):
        AlertRule.objects.filter(organization_id=organization_id, name__in=names).delete()


def ensure_default_channels() -> list[str]:
    """Create the email and Slack channels named by SMTP_* / ALERT_* / SLACK_WEBHOOK_URL if missing.

    Called by ``fleetwatch-migrate``; an existing channel of the same name is left as the operator edited it.
    They set no repeat interval of their own, so ALERT_COOLDOWN_PERIOD (the seeds' cooldown) applies as
    it is set now, also after a change of the variable.
    A set-but-invalid value stops with ImproperlyConfigured naming the variable.
    """
    from collector_server.alerts.models import Channel

    created = []
    for name, kind, config, variable in _env_channels():
        if Channel.objects.filter(name=name).exists():
            continue
        channel = Channel(name=name, kind=kind, config=config, is_default=True, repeat_interval_seconds=None)
        try:
            channel.full_clean()
        except ValidationError as exc:
            raise ImproperlyConfigured(f"{variable}: {'; '.join(exc.messages)}") from None
        channel.save()
        created.append(name)
        log.info("alerting: created default channel %s from the environment", name)
    return created


def _env_channels() -> list[tuple[str, str, dict[str, Any], str]]:
    out = []
    if settings.SMTP_SERVER and settings.ALERT_TO_EMAILS:
        config = {
            "host": settings.SMTP_SERVER,
            "port": settings.SMTP_PORT,
            "security": "ssl" if settings.SMTP_PORT == 465 else "starttls",
            "username": settings.SMTP_USERNAME,
            "password": settings.SMTP_PASSWORD,
            "from": settings.ALERT_FROM_EMAIL or settings.SMTP_USERNAME,
            "to": list(settings.ALERT_TO_EMAILS),
        }
        out.append(("email (environment)", "email", config, "SMTP_SERVER/ALERT_FROM_EMAIL/ALERT_TO_EMAILS"))
    if settings.SLACK_WEBHOOK_URL:
        out.append(
            ("slack (environment)", "slack", {"webhook_url": settings.SLACK_WEBHOOK_URL}, "SLACK_WEBHOOK_URL")
        )
    return out
