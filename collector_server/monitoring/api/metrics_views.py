"""GET metrics/system and metrics/summary in the seed's shapes."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from collector_server.monitoring.api import integrations, params, system_data
from collector_server.monitoring.api.errors import BadParameter
from collector_server.monitoring.api.known_params import KnownQueryParamsMixin
from collector_server.monitoring.api.renderers import RENDERERS
from collector_server.monitoring.models import Host

MAX_MINUTES = 366 * 24 * 60
MAX_HOURS = 366 * 24
HOST_PARAM = OpenApiParameter(
    "host", str, description="Hostname; default every host (rows then carry `host`)."
)


def hosts_for(hostname: str | None) -> list[Host]:
    """Return the host named `hostname`, or every host when it is not given."""
    if not hostname:
        return list(Host.objects.all())
    hosts = list(Host.objects.filter(hostname=hostname))
    if not hosts:
        raise BadParameter("host", f"no host named {hostname!r}")
    return hosts


class SystemMetricsView(KnownQueryParamsMixin, APIView):
    renderer_classes = RENDERERS

    @extend_schema(
        summary="System metrics per collection time",
        parameters=[
            OpenApiParameter("minutes", int, description="Look-back window, 1..527040 (default 60)."),
            HOST_PARAM,
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        minutes = params.integer(request.query_params, "minutes", 60, 1, MAX_MINUTES)
        hosts = hosts_for(request.query_params.get("host"))
        end = timezone.now()
        with_host = len(hosts) > 1
        rows, level = system_data.system_rows(hosts, end - timedelta(minutes=minutes), end, with_host)
        return Response(
            {
                "success": True,
                "data": rows,
                "count": len(rows),
                "time_range_minutes": minutes,
                "source": level,
            }
        )


class SummaryView(KnownQueryParamsMixin, APIView):
    renderer_classes = RENDERERS

    @extend_schema(
        summary="Averages and maxima of system and API metrics",
        parameters=[
            OpenApiParameter("hours", int, description="Look-back window, 1..8784 (default 24)."),
            HOST_PARAM,
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        hours = params.integer(request.query_params, "hours", 24, 1, MAX_HOURS)
        hosts = hosts_for(request.query_params.get("host"))
        end = timezone.now()
        start = end - timedelta(hours=hours)
        fields = system_data.fields_stats(
            hosts, ["cpu_percent", "memory_percent", "disk_usage_percent"], [(start, end)]
        )
        cpu, memory, disk = (fields[name][0] for name in fields)
        system = {
            "avg_cpu_percent": cpu["avg"],
            "max_cpu_percent": cpu["max"],
            "avg_memory_percent": memory["avg"],
            "max_memory_percent": memory["max"],
            "avg_disk_percent": disk["avg"],
            "max_disk_percent": disk["max"],
            "data_points": cpu["data_points"],
        }
        api = integrations.api_summary(start, end)
        data = {"time_period_hours": hours, "system": system, "api": api}
        return Response({"success": True, "data": data})
