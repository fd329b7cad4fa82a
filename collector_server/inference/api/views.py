"""POST an inference (seed path and /api/v1 alias), GET the models' figures, one chart, daily cost."""

from __future__ import annotations

from datetime import timedelta

import redis
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from collector_server.inference import figures, recording
from collector_server.inference.api.serializers import (
    InferenceSerializer,
    ModelsAnswerSerializer,
    RecordedSerializer,
)
from collector_server.monitoring.api import params
from collector_server.monitoring.api.errors import BadParameter
from collector_server.monitoring.api.known_params import KnownQueryParamsMixin
from collector_server.orgs import roles
from collector_server.orgs.permissions import request_scope

MAX_HOURS = 31 * 24
MAX_POINTS = 4000
DEFAULT_POINTS = 300

RANGE_PARAMS = [
    OpenApiParameter(
        "hours", int, description="Look-back from now, 1..744 (default 24); start/end win over it."
    ),
    OpenApiParameter("start", str, description="RFC 3339 or unix seconds (with end instead of hours)."),
    OpenApiParameter("end", str, description="RFC 3339 or unix seconds (default now)."),
    OpenApiParameter("model", str, description="Only this model."),
    OpenApiParameter(
        "organization", str, description="Only this customer organisation (label value; '' allowed)."
    ),
]


def time_range(request: Request):
    query = request.query_params
    now = timezone.now()
    if query.get("start") or query.get("end"):
        start, end = params.time_range(query, now, timedelta(hours=24))
        if end - start > timedelta(hours=MAX_HOURS):
            raise BadParameter("start", f"the range must be at most {MAX_HOURS} hours long")
        return start, end
    hours = params.integer(query, "hours", 24, 1, MAX_HOURS)
    return now - timedelta(hours=hours), now


def filters(request: Request) -> tuple[str | None, str | None]:
    query = request.query_params
    model = query.get("model")
    organization = query.get("organization")  # present but empty: the empty organisation label
    if model is not None and not model.strip():
        raise BadParameter("model", "must not be empty")
    for name, value in (("model", model), ("organization", organization)):
        if value is not None and len(value) > 200:
            raise BadParameter(name, "longer than 200 characters")
    return model, organization


class RecordInferenceView(APIView):
    """POST one inference. Needs the operator role (like every push receiver)."""

    required_roles = {"post": roles.OPERATOR}

    @extend_schema(
        summary="Record one model inference",
        description="Counts the inference in the llm_* series (docs/inference.md) through the ingest "
        "stream and logs its detail (request id, user) as one log record.",
        request=InferenceSerializer,
        responses={202: RecordedSerializer},
    )
    def post(self, request: Request) -> Response:
        serializer = InferenceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        scope = request_scope(request)
        org_id = scope.write_org_id
        if org_id is None:
            raise BadParameter("organization", "you act in no organisation that can be written to")
        try:
            result = recording.record(org_id, data)
        except recording.TooManySeries as exc:
            return Response(
                {"success": False, "error": str(exc), "detail": {"model": [str(exc)]}}, status=429
            )
        except redis.RedisError as exc:
            response = Response({"success": False, "error": f"cannot queue the inference: {exc}"}, status=503)
            response["Retry-After"] = "5"
            return response
        if data.get("cost") is not None:
            source = "reported"
        elif data.get("input_tokens") or data.get("output_tokens"):
            source = "price_table"
        else:
            source = "none"
        return Response({"success": True, **result, "cost_source": source}, status=202)


class SeedRecordInferenceView(RecordInferenceView):
    """The seed's unversioned path, same view; the schema lists /api/v1/monitoring/inference."""

    schema = None


class ModelsView(KnownQueryParamsMixin, APIView):
    @extend_schema(
        summary="Per-model figures over a range",
        parameters=[
            *RANGE_PARAMS,
            OpenApiParameter(
                "by",
                str,
                enum=["model", "organization"],
                description="organization: one row per model and customer organisation.",
            ),
        ],
        responses={200: ModelsAnswerSerializer},
    )
    def get(self, request: Request) -> Response:
        start, end = time_range(request)
        model, organization = filters(request)
        by = params.choice(request.query_params, "by", "model", ("model", "organization"))
        with figures.noting_truncation() as truncated:
            rows = figures.model_rows(start, end, model, organization, by_organization=by == "organization")
        return Response(
            {
                "success": True,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "seconds": (end - start).total_seconds(),
                "by": by,
                "count": len(rows),
                "models": rows,
                "truncated": bool(truncated),
            }
        )


class ModelSeriesView(KnownQueryParamsMixin, APIView):
    @extend_schema(
        summary="One chart of the models page, downsampled to `points` buckets",
        parameters=[
            OpenApiParameter("figure", str, enum=list(figures.FIGURES), required=True),
            *RANGE_PARAMS,
            OpenApiParameter("by", str, enum=["model", "organization"]),
            OpenApiParameter(
                "points",
                int,
                description=f"At most this many buckets, 10..{MAX_POINTS} (default "
                f"{DEFAULT_POINTS}); a chart passes its pixel width.",
            ),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        query = request.query_params
        if not query.get("figure"):
            raise BadParameter("figure", f"required, one of {', '.join(figures.FIGURES)}")
        figure = params.choice(query, "figure", "requests", tuple(figures.FIGURES))
        start, end = time_range(request)
        model, organization = filters(request)
        by = params.choice(query, "by", "model", ("model", "organization"))
        points = params.integer(query, "points", DEFAULT_POINTS, 10, MAX_POINTS)
        body = figures.figure_series(figure, start, end, points, model, organization, by == "organization")
        return Response({"success": True, **body})


class DailyCostView(KnownQueryParamsMixin, APIView):
    @extend_schema(
        summary="Cost and tokens per UTC day, model and customer organisation",
        parameters=[
            OpenApiParameter("days", int, description="Days back from today (UTC), 1..366 (default 30)."),
            OpenApiParameter("model", str),
            OpenApiParameter("organization", str),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        days = params.integer(request.query_params, "days", 30, 1, 366)
        model, organization = filters(request)
        now = timezone.now()
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        start = today - timedelta(days=days - 1)
        rows = figures.daily_costs(start, now, model, organization)
        return Response(
            {"success": True, "start": start.date().isoformat(), "count": len(rows), "days": rows}
        )
