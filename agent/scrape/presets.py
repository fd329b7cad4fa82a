"""Scrape presets: a model server's own metric names mapped onto the LLM series contract.

``preset = "vllm" | "tgi" | "ollama"`` in a ``[[scrape]]`` table adds, to every scrape of
that target, the contract series (shared/llm_series.py) computed from the server's series;
the server's own series are kept too unless ``keep_original = false``. The contract series
carry ``model`` (the server's model label, else the table's ``model``, else the target's
name), the target's ``job`` and ``instance`` and its extra labels; never ``organization``
(a model server does not know who called it).

Histograms are re-bucketed onto the contract's bounds (exact where the server's bounds
include them, else interpolated inside a bucket, as histogram_quantile would); gauges of
several label sets (engines, GPUs) are summed, the KV-cache ratio takes their maximum.
See docs/inference.md, "Model servers (scrape presets)", for each server's names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from shared import llm_series as llm
from shared.wire import COUNTER, GAUGE


@dataclass(frozen=True)
class Gauge:
    source: str
    target: str
    combine: str = "sum"  # or "max"


@dataclass(frozen=True)
class CounterRule:
    source: str  # a sample name (counters: with their _total, if the server writes one)
    target: str
    labels: tuple[tuple[str, str], ...] = ()
    # label -> {value: status}: the source label that decides the status, if any.
    status_from: tuple[str, tuple[tuple[str, str], ...]] | None = None


@dataclass(frozen=True)
class HistogramRule:
    source: str  # the family name: <source>_bucket, _sum, _count
    target: str
    bounds: tuple[float, ...]


@dataclass(frozen=True)
class HistogramSumRule:
    """A histogram whose sum is a counter of the contract (token lengths per request)."""

    source: str
    target: str


@dataclass(frozen=True)
class Preset:
    name: str
    model_label: str | None  # the server's label naming the model
    rules: tuple[Any, ...] = field(default_factory=tuple)


VLLM = Preset(
    "vllm",
    "model_name",
    (
        Gauge("vllm:num_requests_running", llm.RUNNING),
        Gauge("vllm:num_requests_waiting", llm.WAITING),
        Gauge("vllm:gpu_cache_usage_perc", llm.KV_CACHE, "max"),  # a 0..1 ratio despite its name
        Gauge("vllm:kv_cache_usage_perc", llm.KV_CACHE, "max"),  # its V1 engine name
        HistogramRule("vllm:time_to_first_token_seconds", llm.TTFT, llm.TTFT_BOUNDS),
        HistogramRule("vllm:e2e_request_latency_seconds", llm.DURATION, llm.DURATION_BOUNDS),
        HistogramRule("vllm:time_per_output_token_seconds", llm.TPOT, llm.TPOT_BOUNDS),
        CounterRule("vllm:prompt_tokens_total", llm.INPUT_TOKENS),
        CounterRule("vllm:generation_tokens_total", llm.OUTPUT_TOKENS),
        CounterRule(
            "vllm:request_success_total",
            llm.REQUESTS,
            status_from=("finished_reason", (("abort", llm.STATUS_ERROR),)),
        ),
    ),
)
TGI = Preset(
    "tgi",
    None,
    (
        Gauge("tgi_batch_current_size", llm.RUNNING),
        Gauge("tgi_queue_size", llm.WAITING),
        HistogramRule("tgi_request_duration", llm.DURATION, llm.DURATION_BOUNDS),
        HistogramRule("tgi_request_mean_time_per_token_duration", llm.TPOT, llm.TPOT_BOUNDS),
        HistogramSumRule("tgi_request_input_length", llm.INPUT_TOKENS),
        HistogramSumRule("tgi_request_generated_tokens", llm.OUTPUT_TOKENS),
        CounterRule("tgi_request_success", llm.REQUESTS, (("status", llm.STATUS_OK),)),
        CounterRule("tgi_request_failure", llm.REQUESTS, (("status", llm.STATUS_ERROR),)),
    ),
)
# Ollama serves no Prometheus metrics itself: these are the names of the ollama-exporter
# proxy (github.com/rbx/ollama-exporter), which records every /api/chat it forwards.
OLLAMA = Preset(
    "ollama",
    "model",
    (
        CounterRule("ollama_requests_total", llm.REQUESTS, (("status", llm.STATUS_OK),)),
        HistogramRule("ollama_response_seconds", llm.DURATION, llm.DURATION_BOUNDS),
        CounterRule("ollama_tokens_processed_total", llm.INPUT_TOKENS),
        CounterRule("ollama_tokens_generated_total", llm.OUTPUT_TOKENS),
    ),
)
PRESETS = {preset.name: preset for preset in (VLLM, TGI, OLLAMA)}
OWN_LABELS = frozenset({"job", "instance"})


@dataclass
class _Hist:
    buckets: dict[float, float] = field(default_factory=dict)
    total: float = 0.0
    count: float = 0.0


def apply(
    preset_name: str,
    series: list[dict[str, Any]],
    target_labels: dict[str, str],
    default_model: str,
    now: float,
    keep_original: bool = True,
) -> list[dict[str, Any]]:
    """The scrape's series with the preset's contract series added (or instead, see keep_original)."""
    preset = PRESETS[preset_name]
    by_name: dict[str, list[dict[str, Any]]] = {}
    for item in series:
        by_name.setdefault(item["name"], []).append(item)
    out = list(series) if keep_original else []
    common = {k: v for k, v in target_labels.items()}

    def labels_of(item: dict[str, Any], **more: str) -> tuple[tuple[str, str], ...]:
        model = (item["labels"].get(preset.model_label) if preset.model_label else None) or default_model
        return tuple(sorted({**common, "model": model, **more}.items()))

    gauges: dict[tuple[str, tuple], tuple[str, float]] = {}
    counters: dict[tuple[str, tuple], float] = {}
    histograms: dict[tuple[str, tuple], _Hist] = {}
    for rule in preset.rules:
        if isinstance(rule, Gauge):
            for item in by_name.get(rule.source, []):
                key = (rule.target, labels_of(item))
                value = item["points"][-1][1]
                if key in gauges and gauges[key][0] != rule.source:
                    continue  # the same figure under another name (older server): first listed wins
                old = gauges.get(key, (rule.source, None))[1]
                if old is None:
                    gauges[key] = (rule.source, value)
                else:
                    gauges[key] = (rule.source, max(old, value) if rule.combine == "max" else old + value)
        elif isinstance(rule, CounterRule):
            # prometheus_client's parser names a counter's sample <family>_total even where
            # the server writes none (TGI): either name matches.
            names = {rule.source, rule.source if rule.source.endswith("_total") else f"{rule.source}_total"}
            for item in (i for n in sorted(names) for i in by_name.get(n, [])):
                more = dict(rule.labels)
                if rule.status_from:
                    label, mapping = rule.status_from
                    more["status"] = dict(mapping).get(item["labels"].get(label, ""), llm.STATUS_OK)
                key = (rule.target, labels_of(item, **more))
                counters[key] = counters.get(key, 0.0) + item["points"][-1][1]
        elif isinstance(rule, HistogramSumRule):
            for item in by_name.get(f"{rule.source}_sum", []):
                key = (rule.target, labels_of(item))
                counters[key] = counters.get(key, 0.0) + item["points"][-1][1]
        else:
            _histogram(rule, by_name, labels_of, histograms)
    for (name, labels), (_, value) in gauges.items():
        out.append(_series(name, GAUGE, labels, now, value))
    for (name, labels), value in counters.items():
        out.append(_series(name, COUNTER, labels, now, value))
        if name in llm.UNPRICED:  # a model server reports no cost: the price table's, on read
            out.append(_series(llm.UNPRICED[name], COUNTER, labels, now, value))
    for (name, labels), hist in histograms.items():
        bounds = next(r.bounds for r in preset.rules if isinstance(r, HistogramRule) and r.target == name)
        for le, value in llm.rebucket(sorted(hist.buckets.items()), bounds, hist.count):
            out.append(_series(f"{name}_bucket", COUNTER, (*labels, ("le", llm.le_text(le))), now, value))
        out.append(_series(f"{name}_sum", COUNTER, labels, now, hist.total))
        out.append(_series(f"{name}_count", COUNTER, labels, now, hist.count))
    return out


def _histogram(rule: HistogramRule, by_name, labels_of, histograms: dict) -> None:
    for item in by_name.get(f"{rule.source}_bucket", []):
        le_text = item["labels"].get("le", "")
        try:
            le = math.inf if le_text in ("+Inf", "Inf") else float(le_text)
        except ValueError:
            continue
        hist = histograms.setdefault((rule.target, labels_of(item)), _Hist())
        hist.buckets[le] = hist.buckets.get(le, 0.0) + item["points"][-1][1]
    for suffix in ("_sum", "_count"):
        for item in by_name.get(f"{rule.source}{suffix}", []):
            hist = histograms.setdefault((rule.target, labels_of(item)), _Hist())
            if suffix == "_sum":
                hist.total += item["points"][-1][1]
            else:
                hist.count += item["points"][-1][1]


def _series(
    name: str, kind: str, labels: tuple[tuple[str, str], ...], ts: float, value: float
) -> dict[str, Any]:
    return {"name": name, "type": kind, "labels": dict(labels), "points": [[ts, float(value)]]}
