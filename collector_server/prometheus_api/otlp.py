"""OTLP/HTTP metrics and logs mapped onto fleetwatch series and log records.

Metrics: resource and point attributes become labels (dots and other characters a label
name may not hold become `_`); `host.name` (else `service.instance.id`, else DEFAULT_HOST)
names the host. Gauges and non-monotonic sums are gauges; monotonic cumulative sums are
counters named with `_total`; explicit-bucket histograms become `_bucket{le}`, `_sum` and
`_count` counters; summaries their quantile gauges, `_sum` and `_count`. Delta
temporality and exponential histograms cannot be stored as fleetwatch series: such
points are counted (`otlp_points_unsupported`) and skipped.

Metrics named per the OpenTelemetry GenAI conventions also map onto the LLM series
contract (genai_metrics); traces are read for their GenAI spans only (genai_spans).

Logs: body to message, severity to level, trace and span ids kept (hex), resource
`service.name` to service, the scope name to logger, every other attribute kept in attrs.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import re
import zlib
from collections import Counter
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collector_server.prometheus_api.promql.values import PromQLError
from shared.wire import COUNTER, GAUGE

DEFAULT_HOST = "otlp"
CUMULATIVE = 2  # AggregationTemporality
_INVALID = re.compile(r"[^a-zA-Z0-9_]")
# OTLP severity numbers (1-24) to fleetwatch levels, by range.
SEVERITY_LEVELS = ((21, "CRITICAL"), (17, "ERROR"), (13, "WARNING"), (9, "INFO"), (1, "DEBUG"))
LEVEL_NAMES = {"TRACE": "DEBUG", "DEBUG": "DEBUG", "INFO": "INFO", "WARN": "WARNING", "WARNING": "WARNING"}
LEVEL_NAMES |= {"ERROR": "ERROR", "FATAL": "CRITICAL", "CRITICAL": "CRITICAL"}


def decode(message_class: type[Message], body: bytes, content_type: str, encoding: str) -> Any:
    """Parse an OTLP request body (protobuf or JSON, optionally gzip-compressed)."""
    if encoding == "gzip":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError, zlib.error) as exc:
            raise PromQLError(f"body is not gzip-compressed: {exc}") from None
    elif encoding not in ("", "identity"):
        raise PromQLError(f"Content-Encoding {encoding!r} is not supported (gzip or none)")
    kind = content_type.split(";")[0].strip().lower()
    try:
        if kind == "application/x-protobuf":
            return message_class.FromString(body)
        if kind == "application/json":
            document = json.loads(body)
            _hex_ids_to_base64(document)
            return json_format.ParseDict(document, message_class(), ignore_unknown_fields=True)
    except (DecodeError, json_format.ParseError, ValueError, TypeError) as exc:
        raise PromQLError(f"body is not an OTLP {message_class.__name__}: {exc}") from None
    raise PromQLError(f"Content-Type must be application/x-protobuf or application/json, not {kind!r}")


def _hex_ids_to_base64(node: Any) -> None:
    """OTLP/JSON writes trace and span ids in hex; protobuf's JSON mapping expects base64."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("traceId", "spanId", "trace_id", "span_id") and isinstance(value, str):
                try:
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError:
                    raise PromQLError(f"{key} {value!r} is not hex") from None
            else:
                _hex_ids_to_base64(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids_to_base64(item)


def label_name(key: str) -> str:
    name = _INVALID.sub("_", key)
    return f"_{name}" if name[:1].isdigit() or not name else name


def metric_name(name: str) -> str:
    cleaned = re.sub(r"[^a-zA-Z0-9_:]", "_", name)
    return f"_{cleaned}" if cleaned[:1].isdigit() or not cleaned else cleaned


def any_value(value: Any) -> Any:
    """An OTLP AnyValue as a plain value (lists and maps as JSON text)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return ""
    if kind == "array_value":
        return json.dumps([any_value(v) for v in value.array_value.values], default=str)
    if kind == "kvlist_value":
        return json.dumps({kv.key: any_value(kv.value) for kv in value.kvlist_value.values}, default=str)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def attributes(pairs: Any) -> dict[str, str]:
    return {kv.key: str(any_value(kv.value)) for kv in pairs}


def host_of(resource: dict[str, str]) -> str:
    return resource.get("host.name") or resource.get("service.instance.id") or DEFAULT_HOST


def _labels(*maps: dict[str, str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for attrs in maps:
        for key, value in attrs.items():
            if key != "host.name" and value != "":
                labels[label_name(key)] = value
    labels.pop("host", None)
    return labels


def _number(point: Any) -> float:
    return float(point.as_double if point.WhichOneof("value") == "as_double" else point.as_int)


def metrics_to_series(request: Any, counts: Counter[str]) -> dict[str, list[dict[str, Any]]]:
    """Group an ExportMetricsServiceRequest's points by host, as wire-format series."""
    by_host: dict[str, list[dict[str, Any]]] = {}
    for resource_metrics in request.resource_metrics:
        resource = attributes(resource_metrics.resource.attributes)
        out = by_host.setdefault(host_of(resource), [])
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                out.extend(_metric_series(metric, resource, counts))
    return {host: series for host, series in by_host.items() if series}


def _series(name: str, kind: str, labels: dict[str, str], ts: float, value: float) -> dict[str, Any]:
    return {"name": name, "type": kind, "labels": labels, "points": [[ts, value]]}


def _metric_series(metric: Any, resource: dict[str, str], counts: Counter[str]) -> list[dict[str, Any]]:
    name = metric_name(metric.name)
    data = metric.WhichOneof("data")
    out: list[dict[str, Any]] = []
    if data in ("gauge", "sum"):
        body = getattr(metric, data)
        counter = data == "sum" and body.is_monotonic
        if data == "sum" and body.aggregation_temporality != CUMULATIVE:
            counts["otlp_points_unsupported"] += len(body.data_points)
            return out
        if counter and not name.endswith("_total"):
            name = f"{name}_total"
        for point in body.data_points:
            labels = _labels(resource, attributes(point.attributes))
            out.append(
                _series(
                    name, COUNTER if counter else GAUGE, labels, point.time_unix_nano / 1e9, _number(point)
                )
            )
    elif data == "histogram":
        if metric.histogram.aggregation_temporality != CUMULATIVE:
            counts["otlp_points_unsupported"] += len(metric.histogram.data_points)
            return out
        for point in metric.histogram.data_points:
            out.extend(_histogram(name, point, _labels(resource, attributes(point.attributes))))
    elif data == "summary":
        for point in metric.summary.data_points:
            labels = _labels(resource, attributes(point.attributes))
            ts = point.time_unix_nano / 1e9
            for q in point.quantile_values:
                out.append(_series(name, GAUGE, {**labels, "quantile": _float_text(q.quantile)}, ts, q.value))
            out.append(_series(f"{name}_sum", COUNTER, labels, ts, point.sum))
            out.append(_series(f"{name}_count", COUNTER, labels, ts, float(point.count)))
    else:
        points = getattr(metric, data).data_points if data else []
        counts["otlp_points_unsupported"] += max(1, len(points))
    counts["otlp_points_queued"] += len(out)
    return out


def _float_text(value: float) -> str:
    return "+Inf" if math.isinf(value) else repr(float(value))


def _histogram(name: str, point: Any, labels: dict[str, str]) -> list[dict[str, Any]]:
    ts = point.time_unix_nano / 1e9
    out = []
    cumulative = 0
    bounds = [*point.explicit_bounds, math.inf]
    for bound, count in zip(bounds, point.bucket_counts, strict=False):
        cumulative += count
        out.append(
            _series(f"{name}_bucket", COUNTER, {**labels, "le": _float_text(bound)}, ts, float(cumulative))
        )
    out.append(_series(f"{name}_sum", COUNTER, labels, ts, point.sum))
    out.append(_series(f"{name}_count", COUNTER, labels, ts, float(point.count)))
    return out


def _level(record: Any) -> str:
    text = LEVEL_NAMES.get(record.severity_text.upper())
    if text:
        return text
    for floor, level in SEVERITY_LEVELS:
        if record.severity_number >= floor:
            return level
    return "INFO"


def logs_to_records(request: Any, counts: Counter[str]) -> dict[str, list[dict[str, Any]]]:
    """Group an ExportLogsServiceRequest's records by host, as wire-format log records."""
    by_host: dict[str, list[dict[str, Any]]] = {}
    for resource_logs in request.resource_logs:
        resource = attributes(resource_logs.resource.attributes)
        out = by_host.setdefault(host_of(resource), [])
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                out.append(_record(record, resource, scope_logs.scope.name))
                counts["otlp_logs_queued"] += 1
    return {host: records for host, records in by_host.items() if records}


def _record(record: Any, resource: dict[str, str], scope: str) -> dict[str, Any]:
    nanos = record.time_unix_nano or record.observed_time_unix_nano
    body = any_value(record.body) if record.HasField("body") else ""
    attrs = {k: v for k, v in resource.items() if k not in ("service.name", "host.name")}
    attrs.update({k: any_value(kv_value) for k, kv_value in _pairs(record.attributes)})
    out: dict[str, Any] = {"ts": nanos / 1e9, "level": _level(record), "message": str(body), "attrs": attrs}
    if resource.get("service.name"):
        out["service"] = resource["service.name"]
    if scope:
        out["logger"] = scope
    if any(record.trace_id):
        out["trace_id"] = record.trace_id.hex()
    if any(record.span_id):
        out["span_id"] = record.span_id.hex()
    return out


def _pairs(pairs: Any) -> list[tuple[str, Any]]:
    return [(kv.key, kv.value) for kv in pairs]


EXPORTS = {
    "metrics": ExportMetricsServiceRequest,
    "logs": ExportLogsServiceRequest,
    "traces": ExportTraceServiceRequest,
}
