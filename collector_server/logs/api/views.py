"""Log search, log statistics, one request's records, and per-endpoint API metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from collector_server.logs import api_metrics, search, stats
from collector_server.logs.api import params
from collector_server.monitoring import statement_timeout
from collector_server.monitoring.api.errors import BadParameter
from collector_server.monitoring.api.known_params import KnownQueryParamsMixin
from collector_server.monitoring.api.schema import envelope

MAX_REQUEST_RECORDS = 10_000
MAX_API_MINUTES = 60 * 24 * 31
SEARCH_PARAMETERS = [
    OpenApiParameter("start", str, description="ISO 8601 or seconds since 1970 (inclusive)"),
    OpenApiParameter("end", str, description="ISO 8601 or seconds since 1970 (exclusive)"),
    OpenApiParameter("level", str, description="exact level(s), comma-separated"),
    OpenApiParameter("min_level", str, description="this level and above"),
    OpenApiParameter("host", str),
    OpenApiParameter("service", str),
    OpenApiParameter("logger", str),
    OpenApiParameter("pattern", str, description="regular expression on the message (case-insensitive)"),
    OpenApiParameter("case_sensitive", bool),
    OpenApiParameter("q", str, description="words (full text)"),
    OpenApiParameter("request_id", str),
    OpenApiParameter("trace_id", str),
    OpenApiParameter("span_id", str),
    OpenApiParameter("order", str, enum=["newest", "oldest"]),
    OpenApiParameter("limit", int, description="1..1000, default 100"),
    OpenApiParameter("cursor", str, description="next_cursor of the previous page"),
]


LOG_RECORD = inline_serializer(
    "LogRecord",
    {
        "id": serializers.IntegerField(),
        "timestamp": serializers.DateTimeField(),
        "host": serializers.CharField(),
        "service": serializers.CharField(),
        "level": serializers.CharField(),
        "logger": serializers.CharField(),
        "message": serializers.CharField(),
        "request_id": serializers.CharField(allow_null=True),
        "trace_id": serializers.CharField(allow_null=True),
        "span_id": serializers.CharField(allow_null=True),
        "attributes": serializers.DictField(),
    },
    many=True,
)
LOG_SEARCH_RESPONSE = envelope(
    "LogSearchResult",
    LOG_RECORD,
    count=True,
    next_cursor=serializers.CharField(allow_null=True, help_text="Pass as `cursor` for the next page."),
    partial=serializers.BooleanField(
        help_text="The search budget (LOG_SEARCH_BUDGET_MS) ran out before the page was full: `data` holds "
        "every match up to where it stopped and `next_cursor` continues from there."
    ),
    searched_until=serializers.CharField(
        allow_null=True,
        help_text="On a partial page, how far the search got: newest first, it searched back to this "
        "time; oldest first, up to it (ISO 8601 UTC).",
    ),
)


class LogSearchView(KnownQueryParamsMixin, APIView):
    """GET /api/v1/logs/search: filter log records; page with next_cursor."""

    query_param_prefixes = (search.ATTR_PREFIX,)  # attr.<key>=<value>: records whose attribute matches

    @extend_schema(parameters=SEARCH_PARAMETERS, responses=LOG_SEARCH_RESPONSE)
    def get(self, request: Request) -> Response:
        query = search.parse(request.query_params)
        result = search.page(query)
        return Response(
            {
                "success": True,
                "data": result.rows,
                "count": len(result.rows),
                "next_cursor": result.next_cursor,
                "partial": result.partial,
                "searched_until": result.searched_until,
            }
        )


class LogStatsView(KnownQueryParamsMixin, APIView):
    """GET /api/v1/logs/stats?hours=24: counts per level and service over time, top messages."""

    @extend_schema(parameters=[OpenApiParameter("hours", int)], responses=OpenApiTypes.OBJECT)
    @statement_timeout.limited
    def get(self, request: Request) -> Response:
        max_hours = settings.LOG_RETENTION_DAYS * 24
        hours = params.integer("hours", request.query_params.get("hours"), 24, 1, max_hours)
        return Response({"success": True, "data": stats.log_stats(hours)})


class RequestLogsView(KnownQueryParamsMixin, APIView):
    """GET /api/v1/logs/requests/{request_id}: every record of one request, oldest first."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, request_id: str) -> Response:
        params.text("request_id", request_id)
        if len(request_id) > 200:
            raise BadParameter("request_id", "must be at most 200 characters")
        rows, truncated = search.request_records(request_id, MAX_REQUEST_RECORDS)
        if not rows:
            raise NotFound(f"no log records for request_id {request_id!r}")
        first, last = rows[0]["timestamp"], rows[-1]["timestamp"]
        return Response(
            {
                "success": True,
                "request_id": request_id,
                "data": rows,
                "count": len(rows),
                "truncated": truncated,
                "hosts": sorted({r["host"] for r in rows}),
                "services": sorted({r["service"] for r in rows}),
                "duration_ms": round(
                    (datetime.fromisoformat(last) - datetime.fromisoformat(first)).total_seconds() * 1000, 3
                ),
            }
        )


class ApiMetricsView(KnownQueryParamsMixin, APIView):
    """GET /api/v1/monitoring/metrics/api?minutes=60: one row per endpoint, merged over hosts."""

    @extend_schema(parameters=[OpenApiParameter("minutes", int)], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        minutes = params.integer("minutes", request.query_params.get("minutes"), 60, 1, MAX_API_MINUTES)
        # The rows come from raw samples: a longer window than they are kept would count only part of it.
        raw_minutes = settings.RAW_RETENTION_DAYS * 24 * 60
        if minutes > raw_minutes:
            raise BadParameter(
                "minutes",
                f"must be at most {raw_minutes}: raw samples are kept {settings.RAW_RETENTION_DAYS} days "
                f"(RAW_RETENTION_DAYS), got {minutes}",
            )
        end = datetime.now(UTC)
        rows = api_metrics.endpoint_rows(end - timedelta(minutes=minutes), end)
        return Response({"success": True, "data": rows, "count": len(rows), "time_range_minutes": minutes})
