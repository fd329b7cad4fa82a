"""System metrics in the seed's row shape, summaries and trends, read through the query engine.

Field sources (per host):
  cpu_percent         system_cpu_usage_percent without a `core` label (the total)
  memory_percent      system_memory_usage_percent
  disk_usage_percent  system_disk_usage_percent of mountpoint "/"; a host without "/" reports
                      the fullest mountpoint (max over mountpoints)
  network_bytes_*     system_network_bytes_{sent,recv}_total without `interface` (all but loopback);
                      the cumulative counter value, as the seed reports it
  active_connections  system_connections_active
Gauges in a rollup bucket are the bucket average; counters the bucket's last value.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from collector_server.monitoring import query, window_stats
from collector_server.monitoring.models import Host
from collector_server.orgs import scope
from collector_server.replica import read_connection as connection  # the replica on API reads

FIELDS = {
    "cpu_percent": "system_cpu_usage_percent",
    "memory_percent": "system_memory_usage_percent",
    "disk_usage_percent": "system_disk_usage_percent",
    "network_bytes_sent": "system_network_bytes_sent_total",
    "network_bytes_recv": "system_network_bytes_recv_total",
    "active_connections": "system_connections_active",
}
EXCLUDED_LABEL = {"cpu_percent": "core", "network_bytes_sent": "interface", "network_bytes_recv": "interface"}
COUNTER_FIELDS = frozenset({"network_bytes_sent", "network_bytes_recv"})
INTEGER_FIELDS = ("network_bytes_sent", "network_bytes_recv", "active_connections")
ROOT_MOUNT = "/"
TREND_THRESHOLD_POINTS = 5.0


@dataclass
class FieldSeries:
    """Series feeding one field, with the host each belongs to."""

    series: list[query.SeriesInfo]
    field_of: dict[int, str]
    host_of: dict[int, str]


def field_series(hosts: list[Host], fields: list[str] | None = None) -> FieldSeries:
    """Select the series of each field for the given hosts (see the module docstring)."""
    fields = fields or list(FIELDS)
    metric_field = {FIELDS[f]: f for f in fields}
    hostnames = {h.id: h.hostname for h in hosts}
    result = FieldSeries([], {}, {})
    if not hostnames:
        return result
    # One plain statement (no model instances: building 300 Series and their Hosts through the
    # ORM cost more than the statistics' own query).
    org_clause, org_params = scope.sql_filter("organization_id")
    sql = (
        "SELECT id, name, kind, host_id, labels::text FROM monitoring_series "
        f"WHERE host_id = ANY(%s) AND name = ANY(%s) AND {org_clause}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(hostnames), list(metric_field), *org_params])
        rows = cursor.fetchall()
    chosen: dict[tuple[int, str], list[query.SeriesInfo]] = defaultdict(list)
    for sid, metric, kind, host_id, labels_text in rows:
        name = metric_field[metric]
        labels = orjson.loads(labels_text)
        if EXCLUDED_LABEL.get(name) in labels:
            continue
        chosen[(host_id, name)].append(query.SeriesInfo(sid, kind, labels))
    for (host_id, name), members in chosen.items():
        if name == "disk_usage_percent":
            root = [s for s in members if s.labels.get("mountpoint") == ROOT_MOUNT]
            members = root or members
        for s in members:
            result.series.append(s)
            result.field_of[s.id] = name
            result.host_of[s.id] = hostnames[host_id]
    return result


def system_rows(hosts: list[Host], start: datetime, end: datetime, with_host: bool) -> tuple[list[dict], str]:
    """Return one row per (host, collection time or bucket), oldest first, and the level read."""
    level = query.choose_level(start, end, 0)
    selected = field_series(hosts)
    if not selected.series:
        return [], level
    params = query.row_params(level, selected.series, start, end)
    # Epoch seconds rather than timestamptz: parsing thousands of timestamps dominated the time.
    sql = (
        f"WITH r AS ({query.rows_sql(level)}) "
        "SELECT series_id, extract(epoch FROM t)::float8, sum / nullif(count, 0), last FROM r"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    rows: dict[tuple[str, float], dict] = {}
    for sid, epoch, avg, last in fetched:
        host, name = selected.host_of[sid], selected.field_of[sid]
        row = rows.get((host, epoch))
        if row is None:
            row = rows[(host, epoch)] = _empty_row(host, epoch, with_host)
        value = last if name in COUNTER_FIELDS else avg
        if value is None:
            continue
        previous = row[name]
        # Several series for a field (disk without "/") combine by max.
        row[name] = value if previous is None else max(previous, value)
    for row in rows.values():
        for name in INTEGER_FIELDS:
            if row[name] is not None:
                row[name] = int(row[name])
    return [rows[key] for key in sorted(rows, key=lambda key: (key[1], key[0]))], level


def _empty_row(host: str, epoch: float, with_host: bool) -> dict:
    row: dict = {"timestamp": iso(datetime.fromtimestamp(epoch, UTC))}
    if with_host:
        row["host"] = host
    row.update(dict.fromkeys(FIELDS))
    return row


def field_stats(
    hosts: list[Host], name: str, start: datetime, end: datetime
) -> dict[str, float | int | None]:
    """Return avg, max, min and data_points of one field over all given hosts."""
    return fields_stats(hosts, [name], [(start, end)])[name][0]


def fields_stats(
    hosts: list[Host], names: list[str], windows: list[tuple[datetime, datetime]]
) -> dict[str, list[dict[str, float | int | None]]]:
    """Return, per field, avg, max, min and data_points over all given hosts in each window."""
    found = window_stats_of(hosts, names, windows)
    return {name: [stats_dict(stats) for stats in per_window] for name, per_window in found.items()}


def window_stats_of(
    hosts: list[Host], names: list[str], windows: list[tuple[datetime, datetime]]
) -> dict[str, list[window_stats.Stats]]:
    """Per field, the exact Stats over all given hosts in each window.

    One statement for every field and window, reading whole hours from the 1 h rollups and
    whole minutes from the 1 m rollups (``window_stats``): the same figures as the raw samples.
    """
    selected = field_series(hosts, names)
    index = {name: i for i, name in enumerate(names)}
    group_of = {s.id: index[selected.field_of[s.id]] for s in selected.series}
    found = window_stats.stats(group_of, windows)
    return {
        name: [found.get((index[name], w), window_stats.EMPTY) for w in range(len(windows))] for name in names
    }


def stats_dict(stats: window_stats.Stats) -> dict[str, float | int | None]:
    if not stats.count:
        return {"avg": None, "max": None, "min": None, "data_points": 0}
    return {
        "avg": _round(stats.avg),
        "max": _round(stats.max),
        "min": _round(stats.min),
        "data_points": stats.count,
    }


def latest_values(hosts: list[Host], name: str, since: datetime) -> float | None:
    """Return the average over hosts of each host's latest value of a field since `since`."""
    return latest_fields(hosts, [name], since)[name]


def latest_fields(hosts: list[Host], names: list[str], since: datetime) -> dict[str, float | None]:
    """Per field, the average over hosts of each host's latest value since `since`.

    One statement: per series, a backward scan of the sample index that stops at the first
    row (``LIMIT 1``), so the cost is one index probe per series, not the window's samples.
    A host with several series of a field (disks without "/") counts its highest.
    """
    selected = field_series(hosts, names)
    out: dict[str, float | None] = dict.fromkeys(names)
    if not selected.series:
        return out
    sql = """
        SELECT ids.id, l.value FROM unnest(%s::bigint[]) AS ids(id)
        CROSS JOIN LATERAL (
            SELECT value FROM monitoring_sample s
            WHERE s.series_id = ids.id AND s.ts >= %s ORDER BY s.ts DESC LIMIT 1
        ) l
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [[s.id for s in selected.series], since])
        fetched = cursor.fetchall()
    per_host: dict[str, dict[str, float]] = defaultdict(dict)
    for sid, value in fetched:
        host, name = selected.host_of[sid], selected.field_of[sid]
        values = per_host[name]
        values[host] = max(values.get(host, value), value)
    for name, values in per_host.items():
        out[name] = _round(sum(values.values()) / len(values)) if values else None
    return out


def trend(first: float | None, second: float | None) -> str:
    """Compare the averages of two halves: a change under TREND_THRESHOLD_POINTS is stable."""
    if first is None or second is None:
        return "unknown"
    change = second - first
    if abs(change) < TREND_THRESHOLD_POINTS:
        return "stable"
    return "increasing" if change > 0 else "decreasing"


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 2)
