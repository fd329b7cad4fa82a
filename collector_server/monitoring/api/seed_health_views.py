"""The seed documents' health paths, answered from the same checks as ``/api/v1/monitoring/health``.

- ``/api/v1/monitoring/status`` (seed 000) and ``/api/health`` (seed 004): the health endpoint
  itself, same body and status codes (aliases, left out of the OpenAPI schema);
- ``/api/metrics`` (seed 004): ``/metrics``;
- ``/health``, ``/health/detailed`` (seed 003): seed 003's body, ``{status, message, timestamp,
  uptime_seconds, checks: [{name, status, message, duration_ms, details}]}``; ``/health`` runs the
  server's checks (Postgres, Redis), ``/health/detailed`` every check of the pipeline;
- ``/health/metrics`` (seed 003): those checks in the Prometheus text format.

None needs authentication, like the health endpoint (load balancers and scrapers call them).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from collector_server.monitoring import health, prometheus
from collector_server.monitoring.api.health_views import HealthView

PROCESS_STARTED = time.monotonic()


class SeedHealthAlias(HealthView):
    """``/api/v1/monitoring/status`` and ``/api/health``: the health endpoint under the seeds' paths."""

    schema = None


def _check_body(check: health.Check) -> dict[str, Any]:
    details = dict(check.details)
    message = str(details.pop("error", "")) or ("OK" if check.healthy else "failing")
    return {
        "name": check.name,
        "status": "healthy" if check.healthy else "unhealthy",
        "message": message,
        "duration_ms": check.duration_ms,
        "details": details,
    }


def seed003_body(checks: list[health.Check]) -> dict[str, Any]:
    failing = [c.name for c in checks if not c.healthy]
    return {
        "status": "unhealthy" if failing else "healthy",
        "message": f"Failing: {', '.join(failing)}" if failing else "All systems operational",
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "uptime_seconds": round(time.monotonic() - PROCESS_STARTED, 3),
        "checks": [_check_body(c) for c in checks],
    }


def _seed003(request: HttpRequest, scope: str) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return JsonResponse({"success": False, "error": f"method {request.method} not allowed"}, status=405)
    body = seed003_body(health.run_checks(scope))
    return JsonResponse(body, status=200 if body["status"] == "healthy" else 503)


def basic_health(request: HttpRequest) -> HttpResponse:
    """``GET /health``: Postgres and Redis (what this server needs to answer)."""
    return _seed003(request, "server")


def detailed_health(request: HttpRequest) -> HttpResponse:
    """``GET /health/detailed``: every check, the pipeline's included."""
    return _seed003(request, "pipeline")


def health_metrics(request: HttpRequest) -> HttpResponse:
    """``GET /health/metrics``: the checks of ``/health/detailed`` as Prometheus gauges."""
    checks = health.run_checks("pipeline")
    up = prometheus.Family(
        "fleetwatch_health_check_up", "gauge", "Whether the health check passed (1) or not (0)."
    )
    took = prometheus.Family(
        "fleetwatch_health_check_duration_seconds", "gauge", "How long the health check took."
    )
    for check in checks:
        up.add(1 if check.healthy else 0, check=check.name)
        took.add(check.duration_ms / 1000.0, check=check.name)
    overall = prometheus.Family("fleetwatch_health_status", "gauge", "1 when every check passed.")
    overall.add(1 if all(c.healthy for c in checks) else 0)
    uptime = prometheus.Family(
        "fleetwatch_server_uptime_seconds", "gauge", "Seconds since this process started."
    )
    uptime.add(time.monotonic() - PROCESS_STARTED)
    return HttpResponse(prometheus.render([up, took, overall, uptime]), content_type=prometheus.CONTENT_TYPE)
