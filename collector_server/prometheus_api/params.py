"""Query parameters in Prometheus' formats: times (RFC 3339 or Unix seconds) and durations."""

from __future__ import annotations

import math
from datetime import datetime

import promql_parser

from collector_server.prometheus_api.promql.values import PromQLError

# Prometheus' own bounds for an open start or end.
MIN_TIME_MS = -9_223_372_036_854_775 // 1000 * 1000
MAX_TIME_MS = 9_223_372_036_854_775 // 1000 * 1000


def parse_time(name: str, text: str) -> int:
    """Return a time parameter in milliseconds since 1970."""
    try:
        seconds = float(text)
        if math.isfinite(seconds):
            return round(seconds * 1000)
    except ValueError:
        pass
    try:
        return round(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        raise PromQLError(f'invalid parameter "{name}": cannot parse "{text}" to a valid timestamp') from None


def parse_duration(name: str, text: str) -> int:
    """Return a duration parameter (seconds as a float, or 5m, 1h30m) in milliseconds."""
    try:
        seconds = float(text)
        if not math.isfinite(seconds):
            raise ValueError(text)
        return round(seconds * 1000)
    except ValueError:
        pass
    try:
        return int(promql_parser.parse_duration(text).total_seconds() * 1000)
    except (ValueError, TypeError, OverflowError):
        raise PromQLError(f'invalid parameter "{name}": cannot parse "{text}" to a valid duration') from None
