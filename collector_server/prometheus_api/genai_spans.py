"""OTLP spans carrying OpenTelemetry GenAI attributes, onto the LLM series contract and the logs.

A span is a GenAI span when it has ``gen_ai.request.model`` or ``gen_ai.response.model``
(the model label: request model first). Each one adds, under its resource's host:

- 1 to ``llm_requests_total{model, organization, status}``: status ``error`` when the span's
  status is ERROR or it has ``error.type``;
- its duration (end - start) to ``llm_request_duration_seconds`` (contract buckets);
- ``gen_ai.usage.input_tokens`` / ``gen_ai.usage.output_tokens`` (or the older
  ``prompt_tokens`` / ``completion_tokens``) to ``llm_input_tokens_total`` / ``llm_output_tokens_total``;
- ``gen_ai.server.time_to_first_token`` (seconds; a fleetwatch extension, no span attribute
  of the conventions carries it) to ``llm_time_to_first_token_seconds``;

and one log record (trace and span ids kept; ``gen_ai.response.id`` as its request id).
Every series also carries the resource's ``service`` and ``instance`` labels (as genai_metrics).
Organisation label: the span's ``fleetwatch.organization`` attribute, else the resource's.
Other spans are counted (``otlp_spans_other``) and acknowledged.

This module only computes increments; span_totals turns them into cumulative counters.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from collector_server.prometheus_api.genai_metrics import (
    ORGANIZATION_ATTRIBUTE,
    contract_labels,
    model_of,
    resource_identity,
)
from collector_server.prometheus_api.otlp import any_value, attributes, host_of
from shared import llm_series as llm

STATUS_CODE_ERROR = 2
INPUT_KEYS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
OUTPUT_KEYS = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
TTFT_KEY = "gen_ai.server.time_to_first_token"
MAX_TOKENS = 1e9  # per span, as the inference endpoint; more is refused (counted)
MAX_SECONDS = 86_400.0
# (host, series name, sorted labels) -> increment
Increments = dict[tuple[str, str, tuple[tuple[str, str], ...]], float]


def _number(
    attrs: dict[str, Any], keys: tuple[str, ...], counts: Counter[str], maximum: float
) -> float | None:
    for key in keys:
        if key in attrs:
            try:
                value = float(attrs[key])
            except (TypeError, ValueError, OverflowError):
                value = math.nan
            if not (0.0 <= value <= maximum):  # NaN, inf, negative, beyond the bound
                counts["otlp_genai_span_values_refused"] += 1
                return None
            return value
    return None


def spans_to_figures(
    request: Any, counts: Counter[str]
) -> tuple[Increments, dict[str, list[dict[str, Any]]]]:
    """(counter increments, log records by host) of an ExportTraceServiceRequest."""
    increments: Increments = {}
    logs: dict[str, list[dict[str, Any]]] = {}
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        host = host_of(resource)
        identity = resource_identity(resource)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attrs = {kv.key: any_value(kv.value) for kv in span.attributes}
                model = str(model_of({k: str(v) for k, v in attrs.items() if k.startswith("gen_ai.")}))
                if not model:
                    counts["otlp_spans_other"] += 1
                    continue
                counts["otlp_spans_genai"] += 1
                organization = str(
                    attrs.get(ORGANIZATION_ATTRIBUTE) or resource.get(ORGANIZATION_ATTRIBUTE, "")
                )
                _add_span(increments, host, identity, span, attrs, model, organization, counts)
                logs.setdefault(host, []).append(
                    _record(span, attrs, resource, scope_spans.scope.name, model)
                )
    return increments, logs


def _add_span(
    increments: Increments,
    host: str,
    identity: tuple[tuple[str, str], ...],
    span: Any,
    attrs: dict[str, Any],
    model: str,
    organization: str,
    counts: Counter[str],
) -> None:
    def add(name: str, labels: tuple[tuple[str, str], ...], value: float) -> None:
        labels = tuple(sorted((*labels, *identity)))  # service, instance: as the metrics' series
        increments[(host, name, labels)] = increments.get((host, name, labels), 0.0) + value

    key = contract_labels(model, organization)
    failed = span.status.code == STATUS_CODE_ERROR or bool(attrs.get("error.type"))
    status = llm.STATUS_ERROR if failed else llm.STATUS_OK
    add(llm.REQUESTS, contract_labels(model, organization, status=status), 1)
    duration = max(0, span.end_time_unix_nano - span.start_time_unix_nano) / 1e9
    _observe(add, llm.DURATION, key, llm.DURATION_BOUNDS, duration)
    for name, keys in ((llm.INPUT_TOKENS, INPUT_KEYS), (llm.OUTPUT_TOKENS, OUTPUT_KEYS)):
        tokens = _number(attrs, keys, counts, MAX_TOKENS)
        if tokens is not None:
            add(name, key, tokens)
            add(llm.UNPRICED[name], key, tokens)  # spans carry no cost: priced on read
    ttft = _number(attrs, (TTFT_KEY,), counts, MAX_SECONDS)
    if ttft is not None:
        _observe(add, llm.TTFT, key, llm.TTFT_BOUNDS, ttft)


def _observe(
    add, name: str, key: tuple[tuple[str, str], ...], bounds: tuple[float, ...], value: float
) -> None:
    for le, hit in llm.observe(bounds, value):
        add(f"{name}_bucket", tuple(sorted((*key, ("le", llm.le_text(le))))), hit)
    add(f"{name}_sum", key, value)
    add(f"{name}_count", key, 1)


def _record(
    span: Any, attrs: dict[str, Any], resource: dict[str, str], scope: str, model: str
) -> dict[str, Any]:
    duration = max(0, span.end_time_unix_nano - span.start_time_unix_nano) / 1e9
    failed = span.status.code == STATUS_CODE_ERROR or bool(attrs.get("error.type"))
    kept = {k: v for k, v in resource.items() if k not in ("service.name", "host.name")}
    kept.update(attrs)
    kept.update({"span_name": span.name, "duration_seconds": round(duration, 6), "model": model})
    if failed:
        kept["status"] = llm.STATUS_ERROR
        if span.status.message:
            kept["status_message"] = span.status.message
    record: dict[str, Any] = {
        "ts": (span.end_time_unix_nano or span.start_time_unix_nano) / 1e9,
        "level": "ERROR" if failed else "INFO",
        "message": f"{span.name}: {model} in {duration:.3f} s",
        "attrs": kept,
    }
    if any(span.trace_id):
        record["trace_id"] = span.trace_id.hex()
    if any(span.span_id):
        record["span_id"] = span.span_id.hex()
    if resource.get("service.name"):
        record["service"] = resource["service.name"]
    if scope:
        record["logger"] = scope
    if attrs.get("gen_ai.response.id"):
        record["request_id"] = str(attrs["gen_ai.response.id"])[:200]
    return record
