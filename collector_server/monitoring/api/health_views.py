"""GET health: probes for load balancers and Kubernetes (no authentication)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from collector_server.monitoring import health
from collector_server.monitoring.api.errors import BadParameter
from collector_server.monitoring.api.known_params import KnownQueryParamsMixin


class HealthView(KnownQueryParamsMixin, APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Health of the server and the pipeline",
        description=(
            "Checks Postgres, Redis (PING, maxmemory-policy noeviction, append-only file), RQ worker heartbeats, "
            "the cron scheduler heartbeat and the lag/pending entries of the ingest streams."
        ),
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description=(
                    "Every check passed (status healthy), or passed with a risk named in `degraded` "
                    "(status degraded: e.g. a Redis without an append-only file)."
                ),
            ),
            503: OpenApiResponse(
                OpenApiTypes.OBJECT, description="At least one check failed; see `failing`."
            ),
        },
        parameters=[
            OpenApiParameter(
                "scope",
                str,
                enum=list(health.SCOPES),
                description=(
                    "pipeline (default): everything; server: Postgres and Redis only (readiness probes); "
                    "live: only that the process answers, no Postgres or Redis query (liveness probes)."
                ),
            )
        ],
        auth=[],
    )
    def get(self, request: Request) -> Response:
        scope = request.query_params.get("scope", "pipeline")
        if scope not in health.SCOPES:
            raise BadParameter("scope", f"must be one of {', '.join(health.SCOPES)}, not {scope!r}")
        body = health.report(health.run_checks(scope))
        code = status.HTTP_503_SERVICE_UNAVAILABLE if body["failing"] else status.HTTP_200_OK
        return Response(body, status=code)
