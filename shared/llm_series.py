"""The LLM series contract (docs/inference.md) and helpers that map other sources onto it.

Every source of inference figures (the SDK, the seed endpoint, OpenTelemetry GenAI metrics
and spans, model-server scrape presets) writes these names, so one query covers them all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

REQUESTS = "llm_requests_total"  # {model, organization, status}
DURATION = "llm_request_duration_seconds"  # histogram {model, organization}
TTFT = "llm_time_to_first_token_seconds"  # histogram {model, organization}
INPUT_TOKENS = "llm_input_tokens_total"  # {model, organization}
OUTPUT_TOKENS = "llm_output_tokens_total"  # {model, organization}
COST = "llm_cost_usd_total"  # {model, organization}
RUNNING = "llm_requests_running"  # gauge {model}
WAITING = "llm_requests_waiting"  # gauge {model}
KV_CACHE = "llm_kv_cache_usage_ratio"  # gauge {model}, 0..1
TPOT = "llm_time_per_output_token_seconds"  # histogram {model}

STATUS_OK = "ok"
STATUS_ERROR = "error"

DURATION_BOUNDS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
TTFT_BOUNDS: tuple[float, ...] = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# No bucket layout is fixed for time per output token: sources keep theirs, spans use these.
TPOT_BOUNDS: tuple[float, ...] = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)


def le_text(bound: float) -> str:
    """A bucket bound as the `le` label value (Prometheus' text: 0.05, 1.0, +Inf)."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def rebucket(
    source: Sequence[tuple[float, float]], bounds: Sequence[float], total: float
) -> list[tuple[float, float]]:
    """Cumulative counts at ``bounds`` (plus +Inf = ``total``) from cumulative ``source`` buckets.

    ``source``: (upper bound, cumulative count) pairs in any order, +Inf included or not.
    A target bound that is one of the source's gets its count exactly; one between two
    source bounds is interpolated linearly (what histogram_quantile assumes inside a
    bucket); one above the highest finite source bound gets that bound's count; one below
    the lowest gets the lowest bucket's share (interpolated from 0). Counts stay monotone
    in the bound and, for cumulative sources, in time.
    """
    finite = sorted((le, count) for le, count in source if not math.isinf(le))
    out: list[tuple[float, float]] = []
    for bound in bounds:
        out.append((float(bound), _count_at(finite, float(bound))))
    out.append((math.inf, float(total)))
    return out


def _count_at(finite: list[tuple[float, float]], bound: float) -> float:
    if not finite:
        return 0.0
    lower_le, lower_count = 0.0, 0.0
    for le, count in finite:
        if math.isclose(le, bound, rel_tol=1e-9) or le == bound:
            return float(count)
        if le > bound:
            if le <= lower_le:
                return float(lower_count)
            share = (bound - lower_le) / (le - lower_le)
            return float(lower_count + (count - lower_count) * max(0.0, share))
        lower_le, lower_count = le, count
    return float(lower_count)


def observe(bounds: Sequence[float], value: float) -> list[tuple[float, int]]:
    """The cumulative bucket increments of one observation: 1 for every bound ≥ value, and +Inf."""
    return [(float(b), 1 if value <= b else 0) for b in bounds] + [(math.inf, 1)]
