"""OTLP metrics named per the OpenTelemetry GenAI semantic conventions, onto the LLM series contract.

The original OTLP series are stored as well (otlp.metrics_to_series); this adds, per
resource (one process), the contract series of shared/llm_series.py:

- ``gen_ai.client.operation.duration`` (else ``gen_ai.server.request.duration`` for the same
  model and organisation): ``llm_request_duration_seconds`` re-bucketed onto the contract's
  bounds, and its count as ``llm_requests_total{status}`` (``error`` when the point has
  ``error.type``);
- ``gen_ai.client.token.usage``: its sum by ``gen_ai.token.type`` (input, output) as
  ``llm_input_tokens_total`` / ``llm_output_tokens_total``;
- ``gen_ai.server.time_to_first_token``: ``llm_time_to_first_token_seconds``;
- ``gen_ai.server.time_per_output_token``: ``llm_time_per_output_token_seconds{model}``.

Model: ``gen_ai.request.model``, else ``gen_ai.response.model``. Organisation label: the
point's ``fleetwatch.organization`` attribute, else the resource's (absent: no label). Every
contract series also carries ``service`` (``service.name``) and ``instance``
(``service.instance.id``, else a short stable hash of the resource's attributes): each process
reports its own cumulative values, so two resources without ``host.name`` never share (and
scramble) one cumulative series; readers sum over these labels.
Points that collapse onto the same contract labels (other attributes differ) are summed.
Only cumulative explicit-bucket histograms map; other shapes are counted
(``otlp_genai_points_unsupported``), points without a model too (``otlp_genai_points_without_model``).
A point whose sum is not a finite number 0..1e15 (negative tokens or seconds, NaN, inf) is not
mapped (``otlp_genai_point_values_refused``); its OTLP series is stored as sent. Counts and
bucket counts are unsigned in OTLP (a negative one is a 400 at decoding).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from collector_server.prometheus_api.otlp import CUMULATIVE, attributes, host_of
from shared import llm_series as llm
from shared.wire import COUNTER

ORGANIZATION_ATTRIBUTE = "fleetwatch.organization"
CLIENT_DURATION = "gen_ai.client.operation.duration"
SERVER_DURATION = "gen_ai.server.request.duration"
TOKEN_USAGE = "gen_ai.client.token.usage"
SERVER_TTFT = "gen_ai.server.time_to_first_token"
SERVER_TPOT = "gen_ai.server.time_per_output_token"
MAX_SUM = 1e15  # a cumulative sum (tokens, seconds) beyond this is refused, not stored
GENAI_METRICS = frozenset({CLIENT_DURATION, SERVER_DURATION, TOKEN_USAGE, SERVER_TTFT, SERVER_TPOT})

Key = tuple[tuple[str, str], ...]


def model_of(attrs: dict[str, str]) -> str:
    return attrs.get("gen_ai.request.model") or attrs.get("gen_ai.response.model") or ""


def resource_identity(resource: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """The ``service`` and ``instance`` labels of one OTLP resource (one process)."""
    instance = resource.get("service.instance.id") or ""
    if not instance:
        digest = hashlib.sha256(json.dumps(sorted(resource.items()), default=str).encode()).hexdigest()
        instance = f"r-{digest[:12]}"
    service = resource.get("service.name") or ""
    return (("instance", instance), ("service", service)) if service else (("instance", instance),)


def contract_labels(model: str, organization: str, **more: str) -> Key:
    labels = {"model": model, **more}
    if organization:
        labels["organization"] = organization
    return tuple(sorted(labels.items()))


@dataclass
class Histogram:
    buckets: dict[float, float] = field(default_factory=dict)
    total: float = 0.0
    count: float = 0.0

    def add(self, buckets: list[tuple[float, float]], total: float, count: float) -> None:
        for le, value in buckets:
            self.buckets[le] = self.buckets.get(le, 0.0) + value
        self.total += total
        self.count += count


@dataclass
class ResourceFigures:
    """The contract figures of one resource, summed over the points that map onto each."""

    ts: float = 0.0
    start: float = 0.0  # the earliest start time of the points (cumulative since then)
    counters: dict[tuple[str, Key], float] = field(default_factory=dict)
    histograms: dict[tuple[str, Key], Histogram] = field(default_factory=dict)
    server_durations: dict[Key, tuple[Histogram, dict[str, float]]] = field(default_factory=dict)

    def add_counter(self, name: str, key: Key, value: float) -> None:
        self.counters[(name, key)] = self.counters.get((name, key), 0.0) + value

    def histogram(self, name: str, key: Key) -> Histogram:
        return self.histograms.setdefault((name, key), Histogram())

    def series(self) -> list[dict[str, Any]]:
        # A server-side duration counts only where the same process reports no client-side one.
        for key, (hist, statuses) in self.server_durations.items():
            if (llm.DURATION, key) in self.histograms:
                continue
            self.histogram(llm.DURATION, key).add(sorted(hist.buckets.items()), hist.total, hist.count)
            for status, count in statuses.items():
                self.add_counter(llm.REQUESTS, (*key, ("status", status)), count)
        ts, start = self.ts, self.start
        out = [_point(name, dict(key), ts, value, start) for (name, key), value in self.counters.items()]
        for (name, key), hist in self.histograms.items():
            labels = dict(key)
            for le, value in sorted(hist.buckets.items()):
                out.append(_point(f"{name}_bucket", {**labels, "le": llm.le_text(le)}, ts, value, start))
            out.append(_point(f"{name}_sum", labels, ts, hist.total, start))
            out.append(_point(f"{name}_count", labels, ts, hist.count, start))
        return out


def _point(name: str, labels: dict[str, str], ts: float, value: float, start: float) -> dict[str, Any]:
    labels = {k: v for k, v in labels.items() if v != ""}
    out: dict[str, Any] = {"name": name, "type": COUNTER, "labels": labels, "points": [[ts, float(value)]]}
    if start:
        out["start"] = start  # span_totals.add_zero_points reads and removes it
    return out


def genai_series(request: Any, counts: Counter[str]) -> dict[str, list[dict[str, Any]]]:
    """The contract series of an ExportMetricsServiceRequest's GenAI metrics, by host."""
    by_host: dict[str, list[dict[str, Any]]] = {}
    for resource_metrics in request.resource_metrics:
        resource = attributes(resource_metrics.resource.attributes)
        figures = ResourceFigures()
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name in GENAI_METRICS:
                    _map_metric(metric, resource, figures, counts)
        series = figures.series()
        identity = dict(resource_identity(resource))
        for item in series:
            item["labels"].update(identity)
        if series:
            by_host.setdefault(host_of(resource), []).extend(series)
            counts["otlp_genai_series_queued"] += len(series)
    return by_host


def _map_metric(
    metric: Any, resource: dict[str, str], figures: ResourceFigures, counts: Counter[str]
) -> None:
    if metric.WhichOneof("data") != "histogram" or metric.histogram.aggregation_temporality != CUMULATIVE:
        data = metric.WhichOneof("data")
        counts["otlp_genai_points_unsupported"] += max(
            1, len(getattr(metric, data).data_points) if data else 1
        )
        return
    for point in metric.histogram.data_points:
        attrs = attributes(point.attributes)
        model = model_of(attrs)
        if not model:
            counts["otlp_genai_points_without_model"] += 1
            continue
        if not (0.0 <= point.sum <= MAX_SUM):  # NaN, inf, negative: the aggregates would be poisoned
            counts["otlp_genai_point_values_refused"] += 1
            continue
        organization = attrs.get(ORGANIZATION_ATTRIBUTE) or resource.get(ORGANIZATION_ATTRIBUTE, "")
        figures.ts = max(figures.ts, point.time_unix_nano / 1e9)
        if point.start_time_unix_nano:
            started = point.start_time_unix_nano / 1e9
            figures.start = min(figures.start, started) if figures.start else started
        source = list(zip(point.explicit_bounds, _cumulative(point.bucket_counts), strict=False))
        key = contract_labels(model, organization)
        if metric.name == TOKEN_USAGE:
            kind = attrs.get("gen_ai.token.type", "")
            name = {"input": llm.INPUT_TOKENS, "output": llm.OUTPUT_TOKENS}.get(kind)
            if name is None:
                counts["otlp_genai_points_unsupported"] += 1
                continue
            figures.add_counter(name, key, point.sum)
            figures.add_counter(llm.UNPRICED[name], key, point.sum)  # GenAI metrics carry no cost
        elif metric.name == CLIENT_DURATION:
            figures.histogram(llm.DURATION, key).add(
                llm.rebucket(source, llm.DURATION_BOUNDS, point.count), point.sum, point.count
            )
            figures.add_counter(llm.REQUESTS, (*key, ("status", _status(attrs))), point.count)
        elif metric.name == SERVER_DURATION:
            hist, statuses = figures.server_durations.setdefault(key, (Histogram(), {}))
            hist.add(llm.rebucket(source, llm.DURATION_BOUNDS, point.count), point.sum, point.count)
            statuses[_status(attrs)] = statuses.get(_status(attrs), 0.0) + point.count
        elif metric.name == SERVER_TTFT:
            figures.histogram(llm.TTFT, key).add(
                llm.rebucket(source, llm.TTFT_BOUNDS, point.count), point.sum, point.count
            )
        else:  # SERVER_TPOT: a model-server figure, by model only
            figures.histogram(llm.TPOT, contract_labels(model, "")).add(
                llm.rebucket(source, llm.TPOT_BOUNDS, point.count), point.sum, point.count
            )


def _cumulative(counts: Any) -> list[float]:
    total, out = 0.0, []
    for value in counts:
        total += value
        out.append(total)
    return out


def _status(attrs: dict[str, str]) -> str:
    return llm.STATUS_ERROR if attrs.get("error.type") else llm.STATUS_OK
