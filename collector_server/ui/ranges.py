"""Time ranges of the pages: a named range back from now, or an explicit start/end after a zoom."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from django.http import QueryDict
from django.utils import timezone

from collector_server.monitoring.api.errors import BadParameter

# The picker's choices, shortest first; anything longer than 6 h reads rollups (see monitoring.query).
RANGES: dict[str, timedelta] = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
DEFAULT_RANGE = "1h"
MIN_SPAN = timedelta(minutes=1)
MAX_SPAN = timedelta(days=31)
# No bucket finer than the agent's default interval: finer buckets would be mostly empty.
MIN_STEP_SECONDS = 10
DEFAULT_WIDTH = 600
MAX_WIDTH = 4000
# A step of a quarter of an hour or more is rounded up to whole hours, so that the 1 h rollups
# serve the chart: a 7-day chart then reads 168 rows per line instead of 10,080 minute rows,
# and still has a point every few pixels.
COARSE_STEP_SECONDS = 900
HOUR_SECONDS = 3600


def parse(params: QueryDict, now: datetime | None = None) -> tuple[datetime, datetime]:
    """Return (start, end) from ``range`` or from ``start`` and ``end`` (unix seconds)."""
    now = now or timezone.now()
    if params.get("start") or params.get("end"):
        start = _seconds(params, "start")
        end = _seconds(params, "end") if params.get("end") else now
        if end - start < MIN_SPAN:
            raise BadParameter("start", f"the range must be at least {MIN_SPAN.seconds} seconds long")
        if end - start > MAX_SPAN:
            raise BadParameter("start", f"the range must be at most {MAX_SPAN.days} days long")
        return start, end
    name = params.get("range") or DEFAULT_RANGE
    if name not in RANGES:
        raise BadParameter("range", f"{name!r} is not one of {', '.join(RANGES)}")
    return now - RANGES[name], now


def _seconds(params: QueryDict, name: str) -> datetime:
    raw = params.get(name, "")
    try:
        value = float(raw)
    except ValueError:
        raise BadParameter(name, f"{raw!r} is not a time in seconds since 1970") from None
    if not math.isfinite(value) or not 0 < value < 7_258_118_400:
        raise BadParameter(name, f"{raw!r} is out of range")
    return datetime.fromtimestamp(value, UTC)


def width(params: QueryDict, default: int = DEFAULT_WIDTH) -> int:
    """Return the chart's width in pixels: one point per pixel at most."""
    raw = params.get("width")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParameter("width", f"{raw!r} is not a whole number of pixels") from None
    if not 10 <= value <= MAX_WIDTH:
        raise BadParameter("width", f"must be between 10 and {MAX_WIDTH} pixels, got {value}")
    return value


def step_for(start: datetime, end: datetime, pixels: int) -> int:
    """Return the bucket width in seconds that gives at most one point per pixel.

    Coarse steps (``COARSE_STEP_SECONDS`` and more) are whole hours: the 1 h rollups serve them.
    """
    step = max(MIN_STEP_SECONDS, math.ceil((end - start).total_seconds() / pixels))
    if step >= COARSE_STEP_SECONDS:
        step = math.ceil(step / HOUR_SECONDS) * HOUR_SECONDS
    return step
