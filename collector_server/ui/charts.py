"""The charts of the pages, each a few lines over stored metrics, and how one chart's data is built.

A chart's data comes in one request (``chart_data``): every line runs through the monitoring
query engine with a step of range / pixel width, so the server downsamples to what the
chart can draw, and the lines are merged onto one shared time axis (uPlot's layout).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from collector_server.monitoring import query

PERCENT = "%"
BYTES_PER_SECOND = "B/s"


@dataclass(frozen=True)
class Line:
    """One query of a chart; ``label`` is formatted with the group's labels ("core {core}")."""

    metric: str
    label: str
    agg: str = "avg"
    matchers: tuple[str, ...] = ()
    by: tuple[str, ...] = ()


@dataclass(frozen=True)
class Chart:
    name: str
    title: str
    unit: str
    lines: tuple[Line, ...]
    stacked: bool = False
    group: str = "system"  # the charts of an OPTIONAL_GROUPS group show only for hosts with its series

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "unit": self.unit, "stacked": self.stacked}


HOST_CHARTS: tuple[Chart, ...] = (
    Chart("cpu", "CPU total", PERCENT, (Line("system_cpu_usage_percent", "cpu", matchers=('core=""',)),)),
    Chart(
        "cpu_cores",
        "CPU per core (stacked)",
        PERCENT,
        (Line("system_cpu_usage_percent", "core {core}", matchers=('core!=""',), by=("core",)),),
        stacked=True,
    ),
    Chart(
        "load",
        "Load average",
        "",
        (Line("system_load1", "1 min"), Line("system_load5", "5 min"), Line("system_load15", "15 min")),
    ),
    Chart(
        "memory",
        "Memory and swap",
        PERCENT,
        (Line("system_memory_usage_percent", "memory"), Line("system_swap_usage_percent", "swap")),
    ),
    Chart(
        "disk_usage",
        "Disk usage per mount",
        PERCENT,
        (Line("system_disk_usage_percent", "{mountpoint}", agg="max", by=("mountpoint",)),),
    ),
    Chart(
        "disk_io",
        "Disk I/O per device",
        BYTES_PER_SECOND,
        (
            Line("system_disk_read_bytes_total", "read {device}", agg="rate", by=("device",)),
            Line("system_disk_written_bytes_total", "write {device}", agg="rate", by=("device",)),
        ),
    ),
    Chart(
        "network",
        "Network per interface",
        BYTES_PER_SECOND,
        (
            Line(
                "system_network_bytes_recv_total",
                "in {interface}",
                agg="rate",
                matchers=('interface!=""',),
                by=("interface",),
            ),
            Line(
                "system_network_bytes_sent_total",
                "out {interface}",
                agg="rate",
                matchers=('interface!=""',),
                by=("interface",),
            ),
        ),
    ),
    Chart(
        "connections",
        "TCP connections",
        "",
        (
            Line("system_connections_active", "active"),
            Line("system_tcp_connections", "{state}", agg="last", by=("state",)),
        ),
    ),
    Chart("processes", "Processes", "", (Line("system_processes", "processes"),)),
    Chart(
        "pressure",
        "Pressure stall (seconds waiting per second)",
        "s/s",
        (
            Line("system_pressure_cpu_waiting_seconds_total", "cpu", agg="rate"),
            Line("system_pressure_memory_waiting_seconds_total", "memory", agg="rate"),
            Line("system_pressure_io_waiting_seconds_total", "io", agg="rate"),
        ),
        group="pressure",
    ),
    Chart(
        "top_cpu",
        "Top processes by CPU",
        PERCENT,
        (Line("system_process_cpu_percent", "{process}", agg="max", by=("process",)),),
        group="top_processes",
    ),
    Chart(
        "top_memory",
        "Top processes by memory",
        "B",
        (Line("system_process_memory_bytes", "{process}", agg="max", by=("process",)),),
        group="top_processes",
    ),
    Chart(
        "gpu_util",
        "GPU utilization",
        PERCENT,
        (Line("gpu_utilization_percent", "gpu {gpu}", by=("gpu",)),),
        group="gpu",
    ),
    Chart(
        "gpu_memory",
        "GPU memory",
        PERCENT,
        (Line("gpu_memory_usage_percent", "gpu {gpu}", by=("gpu",)),),
        group="gpu",
    ),
    Chart(
        "gpu_temperature",
        "GPU temperature",
        "°C",
        (Line("gpu_temperature_celsius", "gpu {gpu}", by=("gpu",)),),
        group="gpu",
    ),
    Chart("gpu_power", "GPU power", "W", (Line("gpu_power_watts", "gpu {gpu}", by=("gpu",)),), group="gpu"),
)
CHARTS: dict[str, Chart] = {c.name: c for c in HOST_CHARTS}
# group -> metric name prefix a host must have series of for the group's charts to show
OPTIONAL_GROUPS: dict[str, str] = {
    "gpu": "gpu_",
    "pressure": "system_pressure_",
    "top_processes": "system_process_",
}


@dataclass
class Table:
    """Lines merged onto one time axis: ``values[i][j]`` is line i at ``timestamps[j]`` (None = gap)."""

    step: int = 0
    source: str = ""
    lines: list[dict[str, Any]] = field(default_factory=list)

    def add(self, label: str, labels: dict[str, str], points: list[list[float]]) -> None:
        self.lines.append({"label": label, "labels": labels, "points": points})

    def aligned(self) -> tuple[list[int], list[dict[str, Any]]]:
        stamps = sorted({int(p[0]) for line in self.lines for p in line["points"]})
        index = {t: i for i, t in enumerate(stamps)}
        series = []
        for line in self.lines:
            values: list[float | None] = [None] * len(stamps)
            for t, v in line["points"]:
                values[index[int(t)]] = round(v, 4)
            series.append({"label": line["label"], "labels": line["labels"], "values": values})
        return stamps, series


def run_line(table: Table, line: Line, extra: list[str], start: datetime, end: datetime, step: int) -> None:
    """Run one line's query and add its groups to the table."""
    matchers = [query.Matcher.parse(text) for text in (*line.matchers, *extra)]
    result = query.run_query(line.metric, matchers, start, end, step, line.agg, list(line.by) or None)
    table.step, table.source = result.step, result.level
    for group in result.series:
        labels = group["labels"]
        table.add(_label(line.label, labels), labels, group["points"])


def _label(template: str, labels: dict[str, str]) -> str:
    try:
        return template.format_map(_Missing(labels))
    except (ValueError, IndexError):
        return template


class _Missing(dict):
    def __missing__(self, key: str) -> str:
        return ""
