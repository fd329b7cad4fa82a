"""Chart-data endpoints of the UI, under /ui/api/ and in the OpenAPI schema.

Each chart of a page is one GET: the server picks the step from the range and the chart's
pixel width (``width``), so a chart never receives more points than it can draw.
"""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from collector_server.monitoring import health, query
from collector_server.monitoring.api import params
from collector_server.monitoring.api.errors import BadParameter
from collector_server.monitoring.api.known_params import KnownQueryParamsMixin
from collector_server.orgs import scope
from collector_server.replica import read_connection as connection  # the replica on API reads
from collector_server.ui import chart_data, fleet, model_hosts, ranges

MAX_NAMES = 50
RANGE_PARAMETERS = [
    OpenApiParameter("range", str, enum=list(ranges.RANGES), description="Back from now; default 1h."),
    OpenApiParameter("start", str, description="Unix seconds (a zoomed range); overrides range."),
    OpenApiParameter("end", str, description="Unix seconds; default now."),
    OpenApiParameter("width", int, description="The chart's width in pixels: at most one point each."),
]


def _range_and_step(request: Request, default_width: int = ranges.DEFAULT_WIDTH):
    start, end = ranges.parse(request.query_params)
    pixels = ranges.width(request.query_params, default_width)
    return start, end, ranges.step_for(start, end, pixels)


class ChartView(KnownQueryParamsMixin, APIView):
    @extend_schema(
        summary="One chart's data, downsampled to its pixel width",
        description=(
            "Either a named chart (`chart`: a host chart with `host`, or an API endpoint chart) or an "
            "ad hoc `metric` with matchers, aggregation and group-by. Returns `timestamps` (unix "
            "seconds, one per step) and one `values` list per line aligned on them (null = no data), "
            "plus the alert firings in the range as `markers`."
        ),
        parameters=[
            OpenApiParameter("chart", str, enum=list(chart_data.ALL_CHARTS), description="A named chart."),
            OpenApiParameter("host", str, description="The host of a host chart."),
            OpenApiParameter("metric", str, description="An ad hoc chart's metric."),
            OpenApiParameter(
                "match[]", str, many=True, description="label=v, label!=v, label=~re, label!~re"
            ),
            OpenApiParameter("agg", str, enum=list(query.AGGREGATIONS), description="Default avg."),
            OpenApiParameter("by", str, description="Comma-separated labels to group by."),
            OpenApiParameter("step", str, description="Ad hoc charts: a bucket width (30, 30s, 5m, 1h)."),
            *RANGE_PARAMETERS,
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        qp = request.query_params
        start, end, step = _range_and_step(request)
        try:
            if qp.get("chart"):
                data = self._named(qp.get("chart", ""), qp.get("host", ""), start, end, step)
            else:
                metric = params.metric_name(qp)
                agg = params.choice(qp, "agg", "avg", query.AGGREGATIONS)
                by = params.label_names(qp, "by")
                step = max(step, params.duration(qp, "step", None) or 0)
                data = chart_data.metric_chart(metric, qp.getlist("match[]"), agg, by, start, end, step)
        except query.QueryError as exc:
            raise BadParameter(exc.param, exc.problem) from None
        return Response({"success": True, "data": data})

    def _named(self, name: str, host: str, start, end, step):
        if name not in chart_data.ALL_CHARTS:
            raise BadParameter("chart", f"{name!r} is not one of {', '.join(chart_data.ALL_CHARTS)}")
        if name in chart_data.CHARTS and not host:
            raise BadParameter("host", f"the {name} chart needs a host")
        return chart_data.named_chart(name, host, start, end, step)


class FleetView(KnownQueryParamsMixin, APIView):
    @extend_schema(
        summary="Every host with state, firing alerts and sparklines",
        description="CPU, memory, disk and network sparklines per host over the range, at `width` points.",
        parameters=RANGE_PARAMETERS,
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        start, end, step = _range_and_step(request, default_width=120)
        # A sparkline needs no finer than a minute: the 1 m rollups serve it (raw only for their tail).
        step = max(step, fleet.MIN_STEP_SECONDS)
        # Assembled from the cached per-host JSON rather than rendered again (fleet.fleet_json).
        return HttpResponse(fleet.fleet_json(start, end, step), content_type="application/json")


class MetricNamesView(KnownQueryParamsMixin, APIView):
    @extend_schema(
        summary="Metric names for autocomplete",
        parameters=[OpenApiParameter("prefix", str, description="Names containing this text.")],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        text = request.query_params.get("prefix", "")
        if len(text) > 200:
            raise BadParameter("prefix", "must be at most 200 characters")
        org_clause, org_params = scope.sql_filter("organization_id")
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT name, min(kind) FROM monitoring_series WHERE strpos(name, %s) > 0 AND {org_clause} "
                "GROUP BY name ORDER BY name LIMIT %s",
                [text, *org_params, MAX_NAMES],
            )
            rows = [{"name": name, "kind": kind} for name, kind in cursor.fetchall()]
        return Response({"success": True, "data": rows})


class LabelsView(KnownQueryParamsMixin, APIView):
    @extend_schema(
        summary="A metric's label names and their values, for matcher autocomplete",
        parameters=[OpenApiParameter("metric", str, required=True)],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        metric = params.metric_name(request.query_params)
        org_clause, org_params = scope.sql_filter("s.organization_id")
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT kv.key, array_agg(DISTINCT kv.value ORDER BY kv.value) FROM monitoring_series s, "
                f"jsonb_each_text(s.labels) kv WHERE s.name = %s AND {org_clause} GROUP BY kv.key ORDER BY kv.key",
                [metric, *org_params],
            )
            labels = {key: values[:MAX_NAMES] for key, values in cursor.fetchall()}
        return Response({"success": True, "data": {"metric": metric, "labels": labels}})


class HealthBadgeView(KnownQueryParamsMixin, APIView):
    @extend_schema(
        summary="The pipeline's health for the header badge",
        description=(
            "The body of GET /api/v1/monitoring/health?scope=pipeline, always with status 200 "
            "(an unhealthy pipeline is what the badge shows, not a failed request)."
        ),
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        return Response({"success": True, "data": health.report(health.run_checks("pipeline"))})


class ModelHostsView(KnownQueryParamsMixin, APIView):
    @extend_schema(
        summary="Each model's serving hosts with their GPU utilisation",
        description=(
            "Hosts reporting model-server series (llm_requests_running, llm_requests_waiting, "
            "llm_kv_cache_usage_ratio, llm_time_per_output_token_seconds) per model, with the average "
            "utilisation of their GPUs over the range (null: the host reports no GPU)."
        ),
        parameters=RANGE_PARAMETERS,
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        start, end = ranges.parse(request.query_params)
        return Response({"success": True, "data": model_hosts.serving_hosts(start, end)})
