"""The fleet page's data in one request: every host, its firing alerts and its sparklines."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections import Counter
from datetime import datetime
from typing import Any

import redis
from django.conf import settings

from collector_server.alerts.models import Alert
from collector_server.monitoring import query
from collector_server.monitoring.api.system_data import iso
from collector_server.monitoring.models import Host
from collector_server.orgs import scope
from collector_server.redis_conn import get_redis
from shared import streams

# name -> (metric, aggregation, matchers); network adds received and sent.
SPARKLINES: dict[str, tuple[tuple[str, str, tuple[str, ...]], ...]] = {
    "cpu": (("system_cpu_usage_percent", "avg", ('core=""',)),),
    "memory": (("system_memory_usage_percent", "avg", ()),),
    "disk": (("system_disk_usage_percent", "max", ()),),
    "network": (
        ("system_network_bytes_recv_total", "rate", ('interface=""',)),
        ("system_network_bytes_sent_total", "rate", ('interface=""',)),
    ),
}
MIN_STEP_SECONDS = 60
SPARKLINE_UNITS = {"cpu": "%", "memory": "%", "disk": "%", "network": "B/s"}


def fleet(start: datetime, end: datetime, step: int) -> dict[str, Any]:
    """Return the hosts (state, last seen, version, labels, firing alerts) and their sparklines.

    Hosts, states and alert counts are read on every call; the sparklines (the costly part) come
    from ``sparklines``, cached for ``UI_SPARKLINE_CACHE_SECONDS``.
    """
    firing = firing_per_host()
    rows = list(Host.objects.all())
    used_step, lines = cached_sparklines(rows, start, end, step)
    hosts = [
        {
            "hostname": h.hostname,
            "agent_version": h.agent_version,
            "labels": h.labels or {},
            "last_seen": iso(h.last_seen),
            "state": "up" if h.is_up else "down",
            "firing": firing.get(h.hostname, 0),
            "sparklines": lines.get(h.hostname, {}),
        }
        for h in rows
    ]
    return {
        "start": int(start.timestamp()),
        "end": int(end.timestamp()),
        "step": used_step,
        "units": SPARKLINE_UNITS,
        "hosts": hosts,
    }


def cached_sparklines(
    hosts: list[Host], start: datetime, end: datetime, step: int
) -> tuple[int, dict[str, dict[str, list[list[float]]]]]:
    """``sparklines``, reused for UI_SPARKLINE_CACHE_SECONDS by callers of the same scope and range.

    The copy lives in Redis (JSON), so every server process and replica shares it: one miss per
    cache time for the whole deployment, not one per gunicorn worker. The key holds the caller's
    organisations, the range's length, the step, the end rounded down to the cache time, and a
    digest of the hosts' ids (a new host is drawn at once). Without Redis the sparklines are
    computed for each call, as with a cache time of 0.
    """
    seconds = settings.UI_SPARKLINE_CACHE_SECONDS
    if not seconds:
        return sparklines(start, end, step)
    current = scope.current()
    orgs = (
        "all" if current is None or current.org_ids is None else ",".join(map(str, sorted(current.org_ids)))
    )
    ids = hashlib.blake2b(
        ",".join(str(h.pk) for h in sorted(hosts, key=lambda h: h.pk)).encode(), digest_size=8
    )
    key = ":".join(
        map(
            str,
            (
                streams.prefix(),
                "ui-sparklines",
                orgs,
                int((end - start).total_seconds()),
                step,
                int(end.timestamp()) // seconds,
                ids.hexdigest(),
            ),
        )
    )
    try:
        found = get_redis().get(key)
    except redis.RedisError:
        found = None
    if found is not None:
        used_step, lines = json.loads(found)
        return int(used_step), lines
    used_step, lines = sparklines(start, end, step)
    with contextlib.suppress(redis.RedisError):  # the page still gets its data; the next call computes
        get_redis().set(key, json.dumps([used_step, lines], separators=(",", ":")), ex=seconds)
    return used_step, lines


def sparklines(
    start: datetime, end: datetime, step: int
) -> tuple[int, dict[str, dict[str, list[list[float]]]]]:
    """Return the step used and, per hostname, its sparklines {name: [[t, v], ...]}."""
    used_step = step
    by_host: dict[str, dict[str, list[list[float]]]] = {}
    for name, parts in SPARKLINES.items():
        merged: dict[str, dict[int, float]] = {}
        for metric, agg, matchers in parts:
            parsed = [query.Matcher.parse(text) for text in matchers]
            result = query.run_query(metric, parsed, start, end, step, agg, ["host"])
            used_step = result.step
            for group in result.series:
                points = merged.setdefault(group["labels"].get("host", ""), {})
                for t, v in group["points"]:
                    points[int(t)] = points.get(int(t), 0.0) + v
        for host, points in merged.items():
            by_host.setdefault(host, {})[name] = [[t, round(points[t], 3)] for t in sorted(points)]
    return used_step, by_host


def firing_per_host() -> Counter[str]:
    """Return how many alerts fire per host label."""
    counts: Counter[str] = Counter()
    for labels in Alert.objects.filter(state=Alert.FIRING).values_list("labels", flat=True):
        counts[str((labels or {}).get("host", ""))] += 1
    return counts
