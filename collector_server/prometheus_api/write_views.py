"""Receivers that push into fleetwatch: Prometheus remote write (and OTLP, see otlp_views)."""

from __future__ import annotations

import logging
from collections import Counter

import redis
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from rest_framework.request import Request
from rest_framework.response import Response

from collector_server.orgs import roles
from collector_server.orgs.permissions import request_scope
from collector_server.prometheus_api import (
    genai_metrics,
    genai_spans,
    otlp,
    remote_write,
    span_totals,
    stream_queue,
)
from collector_server.prometheus_api.promql.values import PromQLError
from collector_server.prometheus_api.views import PrometheusView, error
from shared import streams

log = logging.getLogger(__name__)
# Span-derived counters are their own agent id per host: never interleaved with the same
# host's OTLP metrics (which may carry the same contract series).
SPANS_SOURCE = "otlp-traces"


def read_body(request: Request) -> bytes:
    """Return the raw body; Django refuses one above DATA_UPLOAD_MAX_MEMORY_SIZE."""
    try:
        return request.body
    except RequestDataTooBig:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raise PromQLError(f"request body larger than {limit} bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)") from None


def caller_org(request: Request) -> int | None:
    """The organisation pushed data goes to: the caller's write organisation."""
    return request_scope(request).write_org_id


class PushView(PrometheusView):
    """POST only; the body is read raw (no DRF parsing). Pushing data needs the operator role."""

    required_roles = {"post": roles.OPERATOR}

    http_method_names = ["post", "options"]
    parser_classes: list = []

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, redis.RedisError):
            # The sender keeps the data and retries: nothing is lost while Redis is away.
            log.warning("cannot queue pushed data: %s", exc)
            response = error("unavailable", f"cannot queue the data: {exc}")
            response.status_code = 503
            response["Retry-After"] = "5"
            return response
        return super().handle_exception(exc)


class RemoteWriteView(PushView):
    def post(self, request: Request) -> HttpResponse:
        encoding = request.headers.get("Content-Encoding", "")
        if encoding.lower() != "snappy":
            raise PromQLError(f"Content-Encoding must be snappy (remote write 1.0), not {encoding!r}")
        body = read_body(request)
        write_request = remote_write.decode(body)
        counts: Counter[str] = Counter()
        by_host = remote_write.to_series(write_request, counts)
        stream_queue.queue(streams.METRICS, "remote-write", body, by_host, counts, caller_org(request))
        return HttpResponse(status=204)


class OtlpView(PushView):
    """OTLP/HTTP: POST /otlp/v1/metrics, /otlp/v1/logs and /otlp/v1/traces (protobuf or JSON, gzip or not)."""

    signal = "metrics"

    def post(self, request: Request) -> HttpResponse:
        content_type = request.headers.get("Content-Type", "")
        body = read_body(request)
        message = otlp.decode(
            otlp.EXPORTS[self.signal], body, content_type, request.headers.get("Content-Encoding", "").lower()
        )
        counts: Counter[str] = Counter()
        org = caller_org(request)
        if self.signal == "metrics":
            by_host = otlp.metrics_to_series(message, counts)
            genai = genai_metrics.genai_series(message, counts)
            span_totals.add_zero_points(genai, org)
            for host, series in genai.items():
                by_host.setdefault(host, []).extend(series)
            span_totals.note_metrics_sources(genai, org)
            stream_queue.queue(streams.METRICS, "otlp", body, by_host, counts, org)
        elif self.signal == "traces":
            self._traces(message, body, counts, org)
        else:
            stream_queue.queue(streams.LOGS, "otlp", body, otlp.logs_to_records(message, counts), counts, org)
        if content_type.split(";")[0].strip().lower() == "application/json":
            return HttpResponse(b"{}", content_type="application/json")
        return HttpResponse(b"", content_type="application/x-protobuf")

    def _traces(self, message, body: bytes, counts: Counter[str], org: int | None) -> None:
        """GenAI spans: counters (running totals) and one log record each; other spans only counted."""
        increments, records = genai_spans.spans_to_figures(message, counts)
        series = span_totals.totals(increments, body, org, counts)
        if records:
            stream_queue.queue(streams.LOGS, SPANS_SOURCE, body, records, None, org)
        # The counts travel with the metrics batch (or alone when there is none).
        stream_queue.queue(streams.METRICS, SPANS_SOURCE, body, series, counts, org)
