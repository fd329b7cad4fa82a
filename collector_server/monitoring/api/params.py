"""Parse query parameters; each problem is a BadParameter (400) naming the parameter."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from django.http import QueryDict
from django.utils.dateparse import parse_datetime

from collector_server.monitoring.api.errors import BadParameter
from shared.wire import LABEL_NAME_RE, METRIC_NAME_RE

DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d)?$")
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def integer(params: QueryDict, name: str, default: int, minimum: int, maximum: int) -> int:
    """Return an integer parameter within [minimum, maximum]."""
    raw = params.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise BadParameter(name, f"{raw!r} is not an integer") from None
    if value < minimum:
        raise BadParameter(name, f"{value} is below the minimum of {minimum}")
    if value > maximum:
        raise BadParameter(name, f"{value} is above the maximum of {maximum}")
    return value


def timestamp(params: QueryDict, name: str, default: datetime) -> datetime:
    """Return a time given as unix seconds or RFC 3339 (a time without zone is UTC), 1970 to 2200."""
    value = _timestamp(params, name, default)
    if not EARLIEST <= value <= LATEST:
        raise BadParameter(name, f"{value.isoformat()} is outside {EARLIEST.year}-{LATEST.year}")
    return value.astimezone(UTC)  # Postgres refuses UTC offsets beyond 15:59


def _timestamp(params: QueryDict, name: str, default: datetime) -> datetime:
    raw = params.get(name)
    if raw is None or raw.strip() == "":
        return default
    raw = raw.strip()
    try:
        return datetime.fromtimestamp(float(raw), tz=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    try:
        parsed = parse_datetime(raw)
    except ValueError:
        parsed = None
    if parsed is None:
        raise BadParameter(
            name, f"{raw!r} is not a time (unix seconds or RFC 3339, e.g. 2026-01-15T10:30:00Z)"
        )
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


MAX_DURATION_SECONDS = 400 * 86400  # longer than the longest retention (1h rollups, 365 days)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def duration(params: QueryDict, name: str, default: int | None) -> int | None:
    """Return a duration in whole seconds from '30', '30s', '5m', '1h' or '1d'."""
    raw = params.get(name)
    if raw is None or raw.strip() == "":
        return default
    match = DURATION_RE.match(raw.strip())
    if not match:
        raise BadParameter(name, f"{raw!r} is not a duration (seconds, or a number with s, m, h or d)")
    try:
        seconds = int(float(match.group(1)) * DURATION_UNITS[match.group(2)])
    except (OverflowError, ValueError):
        seconds = MAX_DURATION_SECONDS + 1
    if seconds < 1:
        raise BadParameter(name, f"{raw!r} is shorter than one second")
    if seconds > MAX_DURATION_SECONDS:
        raise BadParameter(name, f"{raw!r} is longer than {MAX_DURATION_SECONDS // 86400} days")
    return seconds


def choice(params: QueryDict, name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = params.get(name)
    if raw is None or raw.strip() == "":
        return default
    if raw not in choices:
        raise BadParameter(name, f"{raw!r} is not one of {', '.join(choices)}")
    return raw


def metric_name(params: QueryDict, name: str = "metric") -> str:
    raw = (params.get(name) or "").strip()
    if not raw:
        raise BadParameter(name, "is required (a metric name, e.g. system_cpu_usage_percent)")
    if not METRIC_NAME_RE.match(raw):
        raise BadParameter(name, f"{raw!r} is not a metric name")
    return raw


def label_names(params: QueryDict, name: str) -> list[str]:
    """Return a comma-separated list of label names."""
    raw = params.get(name) or ""
    names = [part.strip() for part in raw.split(",") if part.strip()]
    for label in names:
        if not LABEL_NAME_RE.match(label):
            raise BadParameter(name, f"{label!r} is not a label name")
    return names


def time_range(params: QueryDict, now: datetime, default_span: timedelta) -> tuple[datetime, datetime]:
    """Return (start, end); end defaults to now and start to end - default_span."""
    end = timestamp(params, "end", now)
    start = timestamp(params, "start", end - default_span)
    if end <= start:
        raise BadParameter("end", f"{end.isoformat()} is not after start {start.isoformat()}")
    return start, end
