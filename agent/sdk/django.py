"""Request middleware for Django (import only from Django projects).

Add ``"agent.sdk.django.RequestLoggingMiddleware"`` near the top of MIDDLEWARE. Options come
from the ``FLEETWATCH_SDK`` setting, a dict with any of: ``service``, ``slow_threshold_ms``,
``flush_interval``, ``socket_path`` (the agent's endpoint; by default ``$FLEETWATCH_AGENT_SOCKET``
or ``/run/fleetwatch/agent.sock``, as for ``AgentClient()``), ``ship_metrics`` (True by default:
the API metrics go to the agent every ``flush_interval``; False, or ``socket_path: None``, keeps
them in the process only), ``logger``, ``log_requests``, ``log_headers`` (True: the request line
carries the redacted request headers), ``log_body_bytes`` (0: off; else the first N bytes of the
body, redacted).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent.sdk.client import AgentClient
from agent.sdk.observer import RequestObserver, header_organization

UNMATCHED_ROUTE = "__unmatched__"
_OPTIONS = {
    "service",
    "slow_threshold_ms",
    "flush_interval",
    "logger",
    "log_requests",
    "log_headers",
    "log_body_bytes",
    "organization_header",
}


def observer_from_settings() -> RequestObserver:
    """Build a RequestObserver from settings.FLEETWATCH_SDK, naming any unknown option."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    options: dict[str, Any] = dict(getattr(settings, "FLEETWATCH_SDK", {}) or {})
    unknown = set(options) - _OPTIONS - {"socket_path", "ship_metrics"}
    if unknown:
        raise ImproperlyConfigured(f"FLEETWATCH_SDK has unknown option(s) {sorted(unknown)}")
    ship_metrics = options.pop("ship_metrics", True)
    if not isinstance(ship_metrics, bool):
        raise ImproperlyConfigured(
            f"FLEETWATCH_SDK: ship_metrics must be True or False, got {ship_metrics!r}"
        )
    explicit = "socket_path" in options
    socket_path = options.pop("socket_path", None)
    client = None
    if ship_metrics and (socket_path is not None or not explicit):
        client = AgentClient(socket_path)  # None: the default socket, as AgentClient() finds it
    try:
        return RequestObserver(client=client, **options)
    except (TypeError, ValueError) as exc:
        raise ImproperlyConfigured(f"FLEETWATCH_SDK: {exc}") from None


class RequestLoggingMiddleware:
    """Django middleware: ids in log context and response headers, request log, per-route metrics."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[Any], Any], observer: RequestObserver | None = None) -> None:
        self.get_response = get_response
        self.observer = observer or observer_from_settings()

    def __call__(self, request: Any) -> Any:
        headers = request.headers
        state = self.observer.begin(headers.get("X-Request-ID"), headers.get("traceparent"))
        body = _body_prefix(request, self.observer.wants_body())
        try:
            response = self.get_response(request)
        except BaseException as exc:
            self._finish(request, state, 500, 0, exc, body)
            raise
        for name, value in state.response_headers():
            response[name] = value
        size = _response_size(response)
        self._finish(request, state, response.status_code, size, None, body)
        return response

    def _finish(
        self, request: Any, state: Any, status: int, size: int, exc: BaseException | None, body: bytes | None
    ) -> None:
        match = getattr(request, "resolver_match", None)
        if match is not None and match.route:
            route = "/" + match.route.lstrip("^").rstrip("$")
        else:  # no URL pattern matched: one route, so scanners probing paths add no series
            route = UNMATCHED_ROUTE
        try:
            request_bytes = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            request_bytes = 0
        self.observer.finish(
            state,
            method=request.method,
            path=request.path,
            route=route,
            status=status,
            request_bytes=request_bytes,
            response_bytes=size,
            query=request.META.get("QUERY_STRING", ""),
            exc=exc,
            headers=dict(request.headers) if self.observer.log_headers else None,
            body=body,
            organization=_organization(request.headers, self.observer.organization_header, status),
        )


def _body_prefix(request: Any, limit: int) -> bytes | None:
    """Read the body now (Django keeps it for the view) and return its first ``limit`` bytes."""
    if not limit:
        return None
    try:
        return request.body[:limit]
    except Exception:  # too large for DATA_UPLOAD_MAX_MEMORY_SIZE, or already streamed: not logged
        return None


def _response_size(response: Any) -> int:
    """Return the body size: Content-Length when set, else the content (0 for an unsized stream)."""
    length = response.get("Content-Length") if hasattr(response, "get") else None
    if length is not None:
        try:
            return int(length)
        except ValueError:
            pass
    return 0 if getattr(response, "streaming", False) else len(response.content)


def _organization(headers: Any, name: str | None, status: int) -> str | None:
    """The organisation header of a request the security counters count (403, 429; never a 401's)."""
    if not name:
        return None
    return header_organization(headers.get(name), status)
