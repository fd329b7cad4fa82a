"""The fleet page's data in one request: every host, its firing alerts and its sparklines."""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections import Counter
from datetime import datetime, timedelta
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


def fleet_json(start: datetime, end: datetime, step: int) -> str:
    """``fleet`` as the JSON body of the API's answer, assembled from the cached per-host JSON.

    The sparklines of 100 hosts are about 24,000 points: decoding them from the cache and
    encoding them again cost more than everything else of a call, so each host's sparklines
    are kept as a ready JSON fragment and spliced into the body.
    """
    firing = firing_per_host()
    rows = list(Host.objects.all())
    used_step, fragments = cached_fragments(rows, start, end, step)
    parts = []
    for h in rows:
        head = _compact(
            {
                "hostname": h.hostname,
                "agent_version": h.agent_version,
                "labels": h.labels or {},
                "last_seen": iso(h.last_seen),
                "state": "up" if h.is_up else "down",
                "firing": firing.get(h.hostname, 0),
            }
        )
        parts.append(head[:-1] + ',"sparklines":' + fragments.get(h.hostname, "{}") + "}")
    meta = _compact(
        {
            "start": int(start.timestamp()),
            "end": int(end.timestamp()),
            "step": used_step,
            "units": SPARKLINE_UNITS,
        }
    )
    return '{"success":true,"data":' + meta[:-1] + ',"hosts":[' + ",".join(parts) + "]}}"


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def cached_sparklines(
    hosts: list[Host], start: datetime, end: datetime, step: int
) -> tuple[int, dict[str, dict[str, list[list[float]]]]]:
    """``cached_fragments`` decoded: per hostname, its sparklines {name: [[t, v], ...]}."""
    used_step, fragments = cached_fragments(hosts, start, end, step)
    return used_step, {host: json.loads(fragment) for host, fragment in fragments.items()}


def cached_fragments(
    hosts: list[Host], start: datetime, end: datetime, step: int
) -> tuple[int, dict[str, str]]:
    """``sparklines`` as one JSON fragment per host, reused for UI_SPARKLINE_CACHE_SECONDS by callers of the same scope and range.

    The copy lives in Redis (JSON) with the time it was computed, so every server process and
    replica shares it, and ``refresh_default_sparklines`` (a scheduler job) keeps the default
    range of the organisations whose fleet page is being looked at fresh: a page view does not
    pay for computing them. The key holds the caller's organisations, the range's length, the
    step and a digest of the hosts' ids (a new host is drawn at once). Without Redis the
    sparklines are computed for each call, as with a cache time of 0.
    """
    seconds = settings.UI_SPARKLINE_CACHE_SECONDS
    if not seconds:
        return sparkline_fragments(start, end, step)
    orgs = _scope_text()
    key = _key(orgs, int((end - start).total_seconds()), step, hosts)
    with contextlib.suppress(redis.RedisError):  # only organisations being looked at are kept warm
        get_redis().set(_viewed_key(orgs), 1, ex=VIEWED_SECONDS)
    found = _read(key, seconds)
    if found is not None:
        return found
    used_step, fragments = sparkline_fragments(start, end, step)
    _write(key, used_step, fragments, seconds)
    return used_step, fragments


# The fleet page opens on the last hour; at any width of 60 px and more its step is a minute.
WARM_SPANS = ((3600, MIN_STEP_SECONDS),)
VIEWED_SECONDS = 300  # an organisation's default sparklines are kept warm this long after a view
WARM_LOCK_SECONDS = 4  # at most one refresh at a time, and not twice within this


def refresh_default_sparklines() -> dict[str, int]:
    """Scheduler job: recompute the default range's sparklines of the organisations viewed lately.

    Runs every few seconds (well within UI_SPARKLINE_CACHE_SECONDS), so the page's own request
    finds them computed; organisations nobody looks at cost nothing.
    """
    from django.utils import timezone

    from collector_server.orgs.models import Organization

    seconds = settings.UI_SPARKLINE_CACHE_SECONDS
    client = get_redis()
    if not seconds or not client.set(
        f"{streams.prefix()}:ui-sparklines-refresh", 1, nx=True, ex=WARM_LOCK_SECONDS
    ):
        return {"organizations": 0}
    org_ids = list(Organization.objects.values_list("pk", flat=True))
    pipe = client.pipeline(transaction=False)
    for org_id in org_ids:
        pipe.exists(_viewed_key(str(org_id)))
    viewed = [org_id for org_id, seen in zip(org_ids, pipe.execute(), strict=True) if seen]
    for org_id in viewed:
        with scope.use_organization(org_id):
            hosts = list(Host.objects.all())
            now = timezone.now()
            for span, step in WARM_SPANS:
                used_step, fragments = sparkline_fragments(now - timedelta(seconds=span), now, step)
                _write(_key(_scope_text(), span, step, hosts), used_step, fragments, seconds)
    return {"organizations": len(viewed)}


def _scope_text() -> str:
    current = scope.current()
    return (
        "all" if current is None or current.org_ids is None else ",".join(map(str, sorted(current.org_ids)))
    )


def _key(orgs: str, span: int, step: int, hosts: list[Host]) -> str:
    ids = hashlib.blake2b(",".join(str(pk) for pk in sorted(h.pk for h in hosts)).encode(), digest_size=8)
    return ":".join(map(str, (streams.prefix(), "ui-sparklines", orgs, span, step, ids.hexdigest())))


def _viewed_key(orgs: str) -> str:
    return f"{streams.prefix()}:ui-fleet-viewed:{orgs}"


def _read(key: str, max_age: int) -> tuple[int, dict[str, str]] | None:
    try:
        found = get_redis().get(key)
    except redis.RedisError:
        return None
    if found is None:
        return None
    computed_at, used_step, fragments = json.loads(found)
    if time.time() - float(computed_at) > max_age:
        return None  # older than the cache time: computed again by this call
    return int(used_step), fragments


def _write(key: str, used_step: int, fragments: dict[str, str], seconds: int) -> None:
    body = json.dumps([time.time(), used_step, fragments], separators=(",", ":"))
    with contextlib.suppress(redis.RedisError):  # the page still gets its data; the next call computes
        get_redis().set(key, body, ex=max(60, 6 * seconds))


def sparkline_fragments(start: datetime, end: datetime, step: int) -> tuple[int, dict[str, str]]:
    """``sparklines`` with each host's as a compact JSON text."""
    used_step, lines = sparklines(start, end, step)
    return used_step, {host: _compact(value) for host, value in lines.items()}


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
