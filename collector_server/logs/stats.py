"""Counts of log records over time: per level and per service in time buckets, top messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from collector_server.logs import levels
from collector_server.logs.search import fetch
from collector_server.orgs import scope

TOP_MESSAGES = 10
TOP_MESSAGE_CHARS = 200
# (window up to N hours, bucket seconds): a few dozen buckets for any window
BUCKETS = ((1, 60), (6, 300), (48, 3600), (24 * 14, 6 * 3600))
LAST_BUCKET_SECONDS = 86_400


def bucket_seconds(hours: int) -> int:
    for limit, seconds in BUCKETS:
        if hours <= limit:
            return seconds
    return LAST_BUCKET_SECONDS


def log_stats(hours: int, now: datetime | None = None) -> dict[str, Any]:
    """Return counts per level, service and host, a timeline, top messages and the error rate."""
    end = now or datetime.now(UTC)
    start = end - timedelta(hours=hours)
    step = bucket_seconds(hours)
    origin = datetime.fromtimestamp(0, UTC)
    org, org_args = scope.sql_filter("organization_id")
    grouped = fetch(
        "SELECT date_bin(make_interval(secs => %s), ts, %s) AS b, level, service, host, count(*) "
        f"FROM logs_entry WHERE ts >= %s AND ts < %s AND {org} GROUP BY 1, 2, 3, 4",
        [step, origin, start, end, *org_args],
    )
    top = fetch(
        "SELECT left(message, %s) AS m, level, count(*) AS n FROM logs_entry WHERE ts >= %s AND ts < %s "
        f"AND {org} GROUP BY 1, 2 ORDER BY n DESC, m LIMIT %s",
        [TOP_MESSAGE_CHARS, start, end, *org_args, TOP_MESSAGES],
    )
    by_level = dict.fromkeys(levels.LEVELS, 0)
    by_service: dict[str, int] = {}
    by_host: dict[str, int] = {}
    timeline: dict[datetime, dict[str, Any]] = {}
    for bucket, level, service, host, count in grouped:
        by_level[level] = by_level.get(level, 0) + count
        by_service[service] = by_service.get(service, 0) + count
        by_host[host] = by_host.get(host, 0) + count
        entry = timeline.setdefault(bucket, {"levels": dict.fromkeys(levels.LEVELS, 0), "services": {}})
        entry["levels"][level] = entry["levels"].get(level, 0) + count
        entry["services"][service] = entry["services"].get(service, 0) + count
    total = sum(by_level.values())
    errors = sum(n for name, n in by_level.items() if levels.LEVELS.get(name, 0) >= levels.ERROR_NUMBER)
    return {
        "time_period_hours": hours,
        "start": _iso(start),
        "end": _iso(end),
        "bucket_seconds": step,
        "total": total,
        "by_level": by_level,
        "by_service": dict(sorted(by_service.items(), key=lambda kv: -kv[1])),
        "by_host": dict(sorted(by_host.items(), key=lambda kv: -kv[1])),
        "error_count": errors,
        "error_rate_percent": round(100.0 * errors / total, 3) if total else 0.0,
        "timeline": [
            {"bucket": _iso(bucket), "total": sum(e["levels"].values()), **e}
            for bucket, e in sorted(timeline.items())
        ],
        "top_messages": [{"message": m, "level": level, "count": n} for m, level, n in top],
    }


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
