"""RequestObserver: what every request middleware (WSGI, ASGI, Django) does around a request.

Before: take X-Request-ID / traceparent (or create them) and put request id, trace id and span
id in the log context. After: count the request in ApiMetrics, log it, warn when it was slow.

The request line can carry the request's headers (``log_headers``, on by default; Authorization,
Cookie and other sensitive ones are redacted) and the first ``log_body_bytes`` of its body (0 by
default: bodies are not logged), redacted like any logged value: a JSON body's sensitive fields,
and tokens or card numbers in any text.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
from collections.abc import Mapping
from typing import Any

from agent.sdk import context
from agent.sdk.client import AgentClient
from agent.sdk.ids import TraceIds, trace_ids
from agent.sdk.metrics import (
    DEFAULT_FLUSH_INTERVAL,
    SECURITY_COUNTERS,
    ApiMetrics,
    MetricsFlusher,
    metrics_for,
)
from shared.jsonlog import CONTEXT_ATTR, FIELDS_ATTR, TRUSTED_ATTR
from shared.redaction import Redactor, default_redactor

DEFAULT_SLOW_MS = 1000.0
MAX_LOG_BODY_BYTES = 65536
DEFAULT_LOGGER = "fleetwatch.requests"
DEFAULT_ORGANIZATION_HEADER = "X-Organization"
MAX_ORGANIZATION_LENGTH = 200


def header_organization(value: Any, status: int) -> str | None:
    """The organisation header's value as the security counters may use it for ``status``.

    Only 403 and 429 answers take it: a 401 means the caller is not authenticated, so its
    X-Organization is whatever an attacker chose (a flood of 401s would be charged to a victim
    organisation); a 401 uses the log context's organisation, else "". None: not given.
    """
    if status not in (403, 429) or not value:
        return None
    return str(value)[:MAX_ORGANIZATION_LENGTH]


REQUEST_ID_HEADER = "X-Request-ID"
TRACEPARENT_HEADER = "traceparent"
_DIGIT = re.compile(r"\d")
# Path segments that are ids, so "/users/42" and "/users/43" count as one route "/users/{id}".
_ID_SEGMENT = re.compile(
    r"^(?:\d+|[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}|[0-9a-fA-F]{16,})$"
)


@functools.lru_cache(maxsize=4096)
def route_template(path: str) -> str:
    """Return a path with id-like segments replaced by {id}."""
    if _DIGIT.search(path) is None:
        return path
    return "/".join("{id}" if _ID_SEGMENT.match(seg) else seg for seg in path.split("/"))


class RequestState:
    """One request in flight."""

    __slots__ = ("ids", "previous_context", "previous_ids", "start")

    def __init__(
        self,
        ids: TraceIds,
        previous_context: Mapping[str, Any],
        start: float,
        previous_ids: Mapping[str, Any] | None = None,
    ) -> None:
        self.ids = ids
        self.previous_context = previous_context
        self.previous_ids = previous_ids or {}
        self.start = start

    def response_headers(self) -> list[tuple[str, str]]:
        return [(REQUEST_ID_HEADER, self.ids.request_id), (TRACEPARENT_HEADER, self.ids.traceparent())]


class RequestObserver:
    """Shared request bookkeeping; one per application (thread-safe)."""

    def __init__(
        self,
        service: str = "app",
        *,
        slow_threshold_ms: float = DEFAULT_SLOW_MS,
        metrics: ApiMetrics | None = None,
        client: AgentClient | None = None,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        logger: logging.Logger | str = DEFAULT_LOGGER,
        log_requests: bool = True,
        redactor: Redactor | None = None,
        log_headers: bool = True,
        log_body_bytes: int = 0,
        organization_header: str | None = DEFAULT_ORGANIZATION_HEADER,
    ) -> None:
        if not 0 <= log_body_bytes <= MAX_LOG_BODY_BYTES:
            raise ValueError(f"log_body_bytes must be 0 … {MAX_LOG_BODY_BYTES}, got {log_body_bytes}")
        if slow_threshold_ms < 0:
            raise ValueError(f"slow_threshold_ms must be >= 0, got {slow_threshold_ms}")
        if flush_interval <= 0:
            raise ValueError(f"flush_interval must be > 0 seconds, got {flush_interval}")
        self.service = service
        self.slow_threshold_s = slow_threshold_ms / 1000.0
        self.metrics = metrics or metrics_for(service)
        self.client = client
        self.flusher = MetricsFlusher(self.metrics, client, flush_interval) if client is not None else None
        self.logger = logger if isinstance(logger, logging.Logger) else logging.getLogger(logger)
        self.log_requests = log_requests
        self.redactor = redactor or default_redactor()
        self.log_headers = log_headers
        self.log_body_bytes = log_body_bytes
        # The security counters' organisation: this request header, else the log context's
        # "organization" (set_context(organization=...)), else "".
        self.organization_header = organization_header
        self._flusher_started = False
        self.errors = 0

    def begin(self, request_id: str | None, traceparent: str | None) -> RequestState:
        """Start a request: ids in the log context; returns the state to hand to ``finish``."""
        if not self._flusher_started and self.flusher is not None:
            self._flusher_started = True
            self.flusher.start()
        ids = trace_ids(request_id, traceparent)
        previous = context.get_context()
        context.replace_context({**previous, **ids.as_context()} if previous else ids.as_context())
        previous_ids = context.swap_request_ids(ids.as_context())  # kept by clear_context()
        return RequestState(ids, previous, time.perf_counter(), previous_ids)

    def finish(
        self,
        state: RequestState,
        *,
        method: str,
        path: str,
        route: str | None,
        status: int,
        request_bytes: int,
        response_bytes: int,
        query: str = "",
        exc: BaseException | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        organization: str | None = None,
    ) -> None:
        """Count and log a finished request, then restore the log context.

        ``body`` is what the middleware captured: at most ``log_body_bytes`` + 1 bytes.
        """
        duration = time.perf_counter() - state.start
        try:
            route = route or route_template(path)
            self.metrics.observe(route, method, status, duration, request_bytes, response_bytes)
            if status in SECURITY_COUNTERS:
                if not organization:
                    organization = str(context.get_context().get("organization") or "")
                self.metrics.observe_security(route, status, organization)
            if self.log_requests:
                extra_fields = self._request_fields(headers, body)
                self._log(
                    state,
                    method,
                    path,
                    route,
                    status,
                    duration,
                    request_bytes,
                    response_bytes,
                    query,
                    exc,
                    extra_fields,
                )
        except Exception:  # bookkeeping must never fail the request; the count shows it happened
            self.errors += 1
        finally:
            context.restore_context(state.previous_context)
            context.swap_request_ids(state.previous_ids)

    def _log(
        self,
        state: RequestState,
        method: str,
        path: str,
        route: str,
        status: int,
        duration: float,
        request_bytes: int,
        response_bytes: int,
        query: str,
        exc: BaseException | None,
        extra_fields: dict[str, Any] | None = None,
    ) -> None:
        slow = duration > self.slow_threshold_s
        level = logging.ERROR if status >= 500 else logging.INFO
        if not (self.logger.isEnabledFor(level) or (slow and self.logger.isEnabledFor(logging.WARNING))):
            return
        # The path and route may carry what the app put in a URL: they are redacted. The rest
        # is the SDK's own figures (and a query string it has redacted already): trusted.
        fields: dict[str, Any] = {"path": path, "route": route, **(extra_fields or {})}
        trusted: dict[str, Any] = {
            "method": method,
            "status_code": status,
            "duration_ms": round(duration * 1000.0, 3),
            "request_size": request_bytes,
            "response_size": response_bytes,
        }
        if query:
            trusted["query"] = self.redactor.redact_query(query)
        # The request's own ids win over whatever the app left in the context (it may have
        # replaced them): this line must stay findable under /logs/requests/{request_id}.
        extra = {
            FIELDS_ATTR: fields,
            TRUSTED_ATTR: trusted,
            CONTEXT_ATTR: {**context.get_context(), **state.ids.as_context()},
        }
        exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
        self._emit(level, "Request completed", exc_info, extra)
        if slow and self.logger.isEnabledFor(logging.WARNING):
            slow_trusted = {**trusted, "slow_threshold_ms": self.slow_threshold_s * 1000.0}
            self._emit(logging.WARNING, "Slow request", None, {**extra, TRUSTED_ATTR: slow_trusted})

    def _request_fields(self, headers: Mapping[str, str] | None, body: bytes | None) -> dict[str, Any]:
        """The redacted headers and body prefix to add to the request line, as configured."""
        out: dict[str, Any] = {}
        if self.log_headers and headers:
            out["request_headers"] = self.redactor.redact_headers(headers)
        if self.log_body_bytes and body:
            truncated = len(body) > self.log_body_bytes
            out["request_body"] = self._redact_body(body[: self.log_body_bytes], truncated)
            out["request_body_truncated"] = truncated
        return out

    def _redact_body(self, body: bytes, truncated: bool) -> str:
        text = body.decode("utf-8", errors="replace")
        if not truncated:
            try:
                return json.dumps(self.redactor.redact(json.loads(text)), ensure_ascii=False)
            except ValueError:
                pass
        return self.redactor.redact_text(text)

    def wants_body(self) -> int:
        """How many body bytes a middleware should capture (0: none)."""
        return self.log_body_bytes + 1 if self.log_body_bytes and self.log_requests else 0

    def _emit(self, level: int, message: str, exc_info: Any, extra: dict[str, Any]) -> None:
        """Log through the logger's handlers and filters without the caller lookup.

        ``Logger.log`` walks the stack to find the calling line, which for a request line is
        always this module; the record says so directly instead.
        """
        logger = self.logger
        if not logger.isEnabledFor(level):
            return
        record = logger.makeRecord(
            logger.name, level, __file__, 0, message, (), exc_info, func="request", extra=extra
        )
        logger.handle(record)

    def close(self) -> None:
        """Stop the metrics thread after a last flush."""
        if self.flusher is not None and self._flusher_started:
            self.flusher.stop(final_flush=True)
