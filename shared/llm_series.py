"""Helpers that map other sources (OpenTelemetry GenAI, model servers) onto the LLM series contract.

The contract's names are shared/inference.py's (docs/inference.md); this adds re-bucketing
of a source's histogram onto the contract's bounds and the buckets of one observation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from shared.inference import (  # noqa: F401  (re-exported: the contract lives in shared/inference.py)
    COST,
    DURATION,
    INPUT_TOKENS,
    KV_CACHE,
    OUTPUT_TOKENS,
    REQUESTS,
    RUNNING,
    TPOT,
    TTFT,
    UNPRICED_INPUT_TOKENS,
    UNPRICED_OUTPUT_TOKENS,
    WAITING,
    format_bound,
)
from shared.inference import DURATION_BUCKETS as DURATION_BOUNDS  # noqa: F401
from shared.inference import ERROR as STATUS_ERROR  # noqa: F401
from shared.inference import OK as STATUS_OK  # noqa: F401
from shared.inference import TTFT_BUCKETS as TTFT_BOUNDS  # noqa: F401

# Tokens without a cost go to the unpriced counters as well (priced on read: docs/inference.md).
UNPRICED = {INPUT_TOKENS: UNPRICED_INPUT_TOKENS, OUTPUT_TOKENS: UNPRICED_OUTPUT_TOKENS}
# No bucket layout is fixed for time per output token: sources keep theirs, spans use these.
TPOT_BOUNDS: tuple[float, ...] = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)


def le_text(bound: float) -> str:
    """A bucket bound as the `le` label value (the contract's spelling: 0.05, 1.0, +Inf)."""
    return "+Inf" if math.isinf(bound) else format_bound(bound)


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
