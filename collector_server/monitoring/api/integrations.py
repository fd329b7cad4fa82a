"""Figures owned by other apps (API request metrics, alerts), read defensively.

Both apps are written alongside this one; until they provide what is read here the
figures are zeros and `available` is false, so the monitoring API keeps working.
"""

from __future__ import annotations

import importlib
import logging
from datetime import datetime
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldError
from django.db import DatabaseError
from django.db.models import Count

log = logging.getLogger(__name__)

API_SUMMARY_DEFAULTS: dict[str, Any] = {
    "total_requests": 0,
    "avg_response_time_ms": 0.0,
    "max_response_time_ms": 0.0,
    "error_count": 0,
    "error_rate_percent": 0.0,
    "unique_endpoints": 0,
}
SEVERITIES = ("critical", "high", "medium", "low")
# Used when the Alert model does not say which states are active (it has ACTIVE_STATES).
ACTIVE_STATUSES = ("active", "pending", "firing")


def api_summary(start: datetime, end: datetime) -> dict[str, Any]:
    """Return collector_server.logs.api_metrics.api_summary(start, end), or zeros until it exists."""
    # The fallback keeps this app usable without the logs app's API metrics module.
    try:
        module = importlib.import_module("collector_server.logs.api_metrics")
        summary = module.api_summary
    except (ImportError, AttributeError):
        return {**API_SUMMARY_DEFAULTS, "available": False}
    return {**API_SUMMARY_DEFAULTS, **dict(summary(start, end)), "available": True}


def alert_counts() -> dict[str, Any]:
    """Return open alerts (Alert.ACTIVE_STATES: pending, firing) by severity; zeros without the model."""
    empty = {"total_active": 0, "by_severity": {}, "critical_count": 0, "high_count": 0, "available": False}
    try:
        model = apps.get_model("alerts", "Alert")
    except LookupError:
        return empty
    field_names = {f.name for f in model._meta.get_fields()}
    state_field = "state" if "state" in field_names else "status"
    active = getattr(model, "ACTIVE_STATES", ACTIVE_STATUSES)
    try:
        rows = (
            model.objects.filter(**{f"{state_field}__in": active}).values("severity").annotate(n=Count("pk"))
        )
        by_severity = {str(row["severity"]): int(row["n"]) for row in rows.order_by()}
    except (FieldError, DatabaseError) as exc:
        log.warning("overview: cannot count alerts: %s", exc)
        return empty
    return {
        "total_active": sum(by_severity.values()),
        "by_severity": by_severity,
        "critical_count": by_severity.get("critical", 0),
        "high_count": by_severity.get("high", 0),
        "available": True,
    }
