"""GET query: any metric, filtered by labels, aggregated per step."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from collector_server.monitoring import query, statement_timeout
from collector_server.monitoring.api import params
from collector_server.monitoring.api.errors import BadParameter
from collector_server.monitoring.api.known_params import KnownQueryParamsMixin
from collector_server.monitoring.api.renderers import RENDERERS
from collector_server.monitoring.api.schema import envelope
from collector_server.monitoring.api.system_data import iso

DEFAULT_SPAN = timedelta(hours=1)
MAX_SPAN = timedelta(days=366)


QUERY_RESPONSE = envelope(
    "QueryResult",
    inline_serializer(
        "QueryData",
        {
            "metric": serializers.CharField(),
            "agg": serializers.CharField(),
            "start": serializers.DateTimeField(),
            "end": serializers.DateTimeField(),
            "step": serializers.IntegerField(help_text="Seconds."),
            "source": serializers.CharField(help_text="raw, 1m, 5m or 1h."),
            "series": inline_serializer(
                "QuerySeries",
                {
                    "labels": serializers.DictField(child=serializers.CharField()),
                    "points": serializers.ListField(
                        child=serializers.ListField(
                            child=serializers.FloatField(), min_length=2, max_length=2
                        ),
                        help_text="[unix seconds, value]",
                    ),
                },
                many=True,
            ),
        },
    ),
    count=True,
)


class QueryView(KnownQueryParamsMixin, APIView):
    renderer_classes = RENDERERS

    @extend_schema(
        summary="Query a metric",
        description=(
            "Selects the series of `metric` matching every `match[]`, aggregates them per `step` "
            "and returns one list of [unix seconds, value] points per series (or per `by` group). "
            "Raw samples, 1 m or 1 h rollups are chosen from the range and step (see docs/api.md)."
        ),
        parameters=[
            OpenApiParameter("metric", str, required=True, description="Metric name."),
            OpenApiParameter(
                "match[]",
                str,
                many=True,
                description="Label matcher: label=v, label!=v, label=~re, label!~re.",
            ),
            OpenApiParameter("start", str, description="Unix seconds or RFC 3339; default end - 1h."),
            OpenApiParameter("end", str, description="Unix seconds or RFC 3339; default now."),
            OpenApiParameter("step", str, description="Bucket width: 30, 30s, 5m, 1h; default range/300."),
            OpenApiParameter("agg", str, enum=list(query.AGGREGATIONS), description="Default avg."),
            OpenApiParameter("by", str, description="Comma-separated labels to group series by."),
        ],
        responses={200: QUERY_RESPONSE},
    )
    @statement_timeout.limited
    def get(self, request: Request) -> Response:
        qp = request.query_params
        metric = params.metric_name(qp)
        start, end = params.time_range(qp, timezone.now(), DEFAULT_SPAN)
        if end - start > MAX_SPAN:
            raise BadParameter("start", f"the range is longer than {MAX_SPAN.days} days")
        step = params.duration(qp, "step", None) or query.default_step(start, end)
        agg = params.choice(qp, "agg", "avg", query.AGGREGATIONS)
        by = params.label_names(qp, "by")
        try:
            matchers = [query.Matcher.parse(text) for text in qp.getlist("match[]")]
            result = query.run_query(metric, matchers, start, end, step, agg, by, json_points=True)
        except query.QueryError as exc:
            raise BadParameter(exc.param, exc.problem) from None
        data = {
            "metric": result.metric,
            "agg": result.agg,
            "start": iso(result.start),
            "end": iso(result.end),
            "step": result.step,
            "source": result.level,
            "series": result.series,
        }
        return Response({"success": True, "data": data, "count": len(result.series)})
