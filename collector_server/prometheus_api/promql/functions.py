"""PromQL functions: over range windows (rate, *_over_time, ...) and element-wise on vectors."""

from __future__ import annotations

import math
from collections.abc import Callable

from collector_server.prometheus_api.promql.storage import WindowStats

RangeFn = Callable[[WindowStats, int, int], float | None]


def extrapolated(
    stats: WindowStats, t_ms: int, range_ms: int, is_counter: bool, is_rate: bool
) -> float | None:
    """Prometheus' extrapolatedRate: the change over the window, extrapolated towards its edges."""
    if stats.count < 2:
        return None
    result = stats.last_v - stats.first_v
    if is_counter:
        result += stats.resets
    range_start = t_ms - range_ms
    to_start = (stats.first_t - range_start) / 1000
    to_end = (t_ms - stats.last_t) / 1000
    sampled = (stats.last_t - stats.first_t) / 1000
    average = sampled / (stats.count - 1)
    if is_counter and result > 0 and stats.first_v >= 0:
        to_start = min(to_start, sampled * (stats.first_v / result))
    threshold = average * 1.1
    interval = sampled
    interval += to_start if to_start < threshold else average / 2
    interval += to_end if to_end < threshold else average / 2
    result *= interval / sampled
    return result / (range_ms / 1000) if is_rate else result


def instant_delta(stats: WindowStats, is_rate: bool) -> float | None:
    """irate / idelta: from the last two samples of the window."""
    if stats.count < 2 or stats.prev_t is None or stats.prev_v is None:
        return None
    result = stats.last_v - stats.prev_v
    if is_rate and stats.last_v < stats.prev_v:
        result = stats.last_v  # counter reset
    if is_rate:
        seconds = (stats.last_t - stats.prev_t) / 1000
        return result / seconds if seconds else None
    return result


RANGE_FUNCTIONS: dict[str, RangeFn] = {
    "rate": lambda s, t, r: extrapolated(s, t, r, True, True),
    "increase": lambda s, t, r: extrapolated(s, t, r, True, False),
    "delta": lambda s, t, r: extrapolated(s, t, r, False, False),
    "irate": lambda s, t, r: instant_delta(s, True),
    "idelta": lambda s, t, r: instant_delta(s, False),
    "avg_over_time": lambda s, t, r: s.total / s.count,
    "sum_over_time": lambda s, t, r: s.total,
    "min_over_time": lambda s, t, r: s.low,
    "max_over_time": lambda s, t, r: s.high,
    "count_over_time": lambda s, t, r: float(s.count),
    "last_over_time": lambda s, t, r: s.last_v,
    "present_over_time": lambda s, t, r: 1.0,
    "stddev_over_time": lambda s, t, r: math.sqrt(s.variance) if s.variance is not None else None,
    "stdvar_over_time": lambda s, t, r: s.variance,
    "quantile_over_time": lambda s, t, r: s.quantile,
}
# Functions the rollup path can answer (the others always read raw samples).
ROLLUP_FUNCTIONS = {
    "rate",
    "increase",
    "delta",
    "avg_over_time",
    "sum_over_time",
    "min_over_time",
    "max_over_time",
    "count_over_time",
    "last_over_time",
    "present_over_time",
}


def _round(value: float, to_nearest: float = 1.0) -> float:
    # Prometheus rounds half up: floor(v * (1/to) + 0.5) / (1/to).
    inverse = 1.0 / to_nearest
    return math.floor(value * inverse + 0.5) / inverse


def _guard(fn: Callable[[float], float]) -> Callable[[float], float]:
    def wrapped(value: float) -> float:
        try:
            return fn(value)
        except (ValueError, OverflowError):
            return math.nan

    return wrapped


# name -> (function of the value and the scalar arguments)
ELEMENTWISE: dict[str, Callable[..., float]] = {
    "abs": abs,
    "ceil": _guard(lambda v: float(math.ceil(v)) if math.isfinite(v) else v),
    "floor": _guard(lambda v: float(math.floor(v)) if math.isfinite(v) else v),
    "round": lambda v, to=1.0: _round(v, to) if math.isfinite(v) else v,
    "clamp_min": lambda v, lo: max(v, lo) if not math.isnan(v) else v,
    "clamp_max": lambda v, hi: min(v, hi) if not math.isnan(v) else v,
    "clamp": lambda v, lo, hi: math.nan if math.isnan(v) else max(min(v, hi), lo),
    "exp": _guard(math.exp),
    "ln": _guard(lambda v: math.log(v) if v > 0 else (-math.inf if v == 0 else math.nan)),
    "log2": _guard(lambda v: math.log2(v) if v > 0 else (-math.inf if v == 0 else math.nan)),
    "log10": _guard(lambda v: math.log10(v) if v > 0 else (-math.inf if v == 0 else math.nan)),
    "sqrt": _guard(lambda v: math.sqrt(v) if v >= 0 else math.nan),
    "sgn": lambda v: v if math.isnan(v) else float((v > 0) - (v < 0)),
}


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus' bucketQuantile over (upper bound, cumulative count) pairs."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    buckets = sorted(buckets)
    if len(buckets) < 2 or not math.isinf(buckets[-1][0]):
        return math.nan
    merged: list[list[float]] = []
    for upper, count in buckets:  # buckets with the same bound are summed
        if merged and merged[-1][0] == upper:
            merged[-1][1] += count
        else:
            merged.append([upper, count])
    for i in range(1, len(merged)):  # counts must not decrease
        merged[i][1] = max(merged[i][1], merged[i - 1][1])
    if len(merged) < 2:
        return math.nan
    observations = merged[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    index = next(i for i, (_, count) in enumerate(merged) if count >= rank)
    if index == len(merged) - 1:
        return merged[-2][0]
    if index == 0 and merged[0][0] <= 0:
        return merged[0][0]
    start, end = 0.0, merged[index][0]
    count = merged[index][1]
    if index > 0:
        start = merged[index - 1][0]
        count -= merged[index - 1][1]
        rank -= merged[index - 1][1]
    return start + (end - start) * (rank / count)


def quantile(q: float, values: list[float]) -> float:
    """Prometheus' quantile aggregation (linear interpolation between ranks)."""
    if not values:
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = max(0, math.floor(rank))
    high = min(len(ordered) - 1, low + 1)
    weight = rank - math.floor(rank)
    return ordered[low] * (1 - weight) + ordered[high] * weight
