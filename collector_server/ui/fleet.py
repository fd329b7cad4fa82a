"""The fleet page's data in one request: every host, its firing alerts and its sparklines."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from collector_server.alerts.models import Alert
from collector_server.monitoring import query
from collector_server.monitoring.api.system_data import iso
from collector_server.monitoring.models import Host

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
    """Return the hosts (state, last seen, version, labels, firing alerts) and their sparklines."""
    firing = firing_per_host()
    hosts = [
        {
            "hostname": h.hostname,
            "agent_version": h.agent_version,
            "labels": h.labels or {},
            "last_seen": iso(h.last_seen),
            "state": "up" if h.is_up else "down",
            "firing": firing.get(h.hostname, 0),
            "sparklines": {},
        }
        for h in Host.objects.all()
    ]
    by_name = {h["hostname"]: h for h in hosts}
    used_step = step
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
            if host in by_name:
                by_name[host]["sparklines"][name] = [[t, round(points[t], 3)] for t in sorted(points)]
    return {
        "start": int(start.timestamp()),
        "end": int(end.timestamp()),
        "step": used_step,
        "units": SPARKLINE_UNITS,
        "hosts": hosts,
    }


def firing_per_host() -> Counter[str]:
    """Return how many alerts fire per host label."""
    counts: Counter[str] = Counter()
    for labels in Alert.objects.filter(state=Alert.FIRING).values_list("labels", flat=True):
        counts[str((labels or {}).get("host", ""))] += 1
    return counts
