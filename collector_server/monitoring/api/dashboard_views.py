"""GET dashboard/overview: health, API performance, alerts and trends in one call."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from collector_server.monitoring import window_stats
from collector_server.monitoring.api import integrations, system_data
from collector_server.monitoring.api.known_params import KnownQueryParamsMixin
from collector_server.monitoring.api.renderers import RENDERERS
from collector_server.monitoring.models import Host

CURRENT_WINDOW = timedelta(minutes=5)
TREND_WINDOW = timedelta(hours=1)
WARNING_PERCENT = 85.0
CRITICAL_PERCENT = 95.0


def health_status(values: list[float | None]) -> str:
    """critical if any usage >= 95 %, warning if >= 85 %, unknown without data, healthy otherwise."""
    known = [v for v in values if v is not None]
    if not known:
        return "unknown"
    if max(known) >= CRITICAL_PERCENT:
        return "critical"
    if max(known) >= WARNING_PERCENT:
        return "warning"
    return "healthy"


class OverviewView(KnownQueryParamsMixin, APIView):
    renderer_classes = RENDERERS

    @extend_schema(summary="Dashboard overview", responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        now = timezone.now()
        cutoff = Host.up_cutoff()
        hosts = list(Host.objects.all())
        up_hosts = [h for h in hosts if h.last_seen >= cutoff]
        current = system_data.latest_fields(
            up_hosts, ["cpu_percent", "memory_percent", "disk_usage_percent"], now - CURRENT_WINDOW
        )
        api = integrations.api_summary(now - TREND_WINDOW, now)
        data = {
            "timestamp": system_data.iso(now),
            "system_health": {
                "status": health_status(list(current.values())),
                "cpu_usage": current["cpu_percent"],
                "memory_usage": current["memory_percent"],
                "disk_usage": current["disk_usage_percent"],
                "hosts_up": len(up_hosts),
                "hosts_down": len(hosts) - len(up_hosts),
            },
            "api_performance": {
                "total_requests": api["total_requests"],
                "avg_response_time": api["avg_response_time_ms"],
                "error_rate": api["error_rate_percent"],
                "unique_endpoints": api["unique_endpoints"],
                "available": api["available"],
            },
            "alerts": integrations.alert_counts(),
            "trends": self.trends(hosts, now),
        }
        return Response({"success": True, "data": data})

    def trends(self, hosts: list[Host], now: datetime) -> dict:
        """Compare the first and second half of the last hour (see system_data.trend)."""
        start, middle = now - TREND_WINDOW, now - TREND_WINDOW / 2
        halves = system_data.window_stats_of(
            hosts, ["cpu_percent", "memory_percent"], [(start, middle), (middle, now)]
        )
        out: dict = {}
        for name, key in (("cpu_percent", "cpu"), ("memory_percent", "memory")):
            first, second = (system_data.stats_dict(half) for half in halves[name])
            out[f"{key}_trend"] = system_data.trend(first["avg"], second["avg"])
            out[f"avg_{key}_last_hour"] = system_data.stats_dict(window_stats.combine(halves[name]))["avg"]
        return out
