"""Pressure stall information (PSI, Linux 4.20+): time tasks waited for CPU, memory and I/O.

``/proc/pressure/{cpu,memory,io}`` hold a ``some`` line (at least one task stalled) and, for
memory and I/O, a ``full`` line (every non-idle task stalled at once), each with a ``total`` in
microseconds. The counters are sent (as node_exporter does); the kernel's avg10/60/300 are
``rate()`` of them. A kernel without PSI (or booted with ``psi=0``, where reading fails with
EOPNOTSUPP) gets one INFO line at start and no series.
"""

from __future__ import annotations

import logging

from agent.collectors.base import Collector, SeriesList
from agent.collectors.hostpaths import DEFAULT_PATHS, HostPaths
from agent.collectors.options import DEFAULT_OPTIONS, CollectorOptions
from shared.wire import COUNTER, series_dict

log = logging.getLogger("agent.collectors.pressure")

# (resource, line kind) -> metric name, node_exporter's names with system_ for node_
PRESSURE_METRICS: dict[tuple[str, bytes], str] = {
    ("cpu", b"some"): "system_pressure_cpu_waiting_seconds_total",
    ("memory", b"some"): "system_pressure_memory_waiting_seconds_total",
    ("memory", b"full"): "system_pressure_memory_stalled_seconds_total",
    ("io", b"some"): "system_pressure_io_waiting_seconds_total",
    ("io", b"full"): "system_pressure_io_stalled_seconds_total",
}
RESOURCES = ("cpu", "memory", "io")


def read_pressure(path: str) -> dict[bytes, float]:
    """Return {b"some": seconds, b"full": seconds} from one /proc/pressure file."""
    out: dict[bytes, float] = {}
    with open(path, "rb") as handle:
        for line in handle.read().splitlines():
            kind, _, rest = line.partition(b" ")
            total = rest.rpartition(b"total=")[2]
            if total.isdigit():
                out[kind] = int(total) / 1e6
    return out


class PressureCollector(Collector):
    name = "pressure"
    description = "Pressure stall information: seconds tasks waited for CPU, memory and I/O (kernel PSI)."
    fields = {
        "system_pressure_cpu_waiting_seconds_total": "counter, seconds some task waited for a CPU",
        "system_pressure_memory_waiting_seconds_total": "counter, seconds some task stalled on memory",
        "system_pressure_memory_stalled_seconds_total": "counter, seconds all non-idle tasks stalled on memory",
        "system_pressure_io_waiting_seconds_total": "counter, seconds some task stalled on I/O",
        "system_pressure_io_stalled_seconds_total": "counter, seconds all non-idle tasks stalled on I/O",
    }

    def __init__(self, paths: HostPaths = DEFAULT_PATHS, options: CollectorOptions = DEFAULT_OPTIONS) -> None:
        super().__init__(paths, options)
        self.files = [(resource, paths.proc("pressure", resource)) for resource in RESOURCES]
        try:
            read_pressure(self.files[0][1])
        except OSError as exc:
            self.files = []
            self.enabled = False
            self.reason = f"no pressure stall information on this kernel ({exc.strerror})"
            log.info("pressure collector off: %s", self.reason)
        else:
            self.enabled = True
            self.reason = ""

    def collect(self, now: float) -> SeriesList:
        series: SeriesList = []
        for resource, path in self.files:
            for kind, seconds in read_pressure(path).items():
                name = PRESSURE_METRICS.get((resource, kind))
                if name is not None:
                    series.append(series_dict(name, [[now, seconds]], None, COUNTER))
        return series
