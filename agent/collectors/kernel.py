"""Kernel activity counters from /proc/stat: context switches, interrupts, forks, runnable tasks.

One read of a file the kernel writes in microseconds; only the lines named in ``STAT_LINES`` are
parsed (the long ``intr`` line is cut at its first number, the total). The per-IRQ and per-CPU
interrupt breakdown node_exporter offers (its ``interrupts`` collector, off by default there) is
left out: it is hundreds of series on a many-core host.
"""

from __future__ import annotations

from agent.collectors.base import Collector, SeriesList
from shared.wire import COUNTER, GAUGE, series_dict

# /proc/stat line key -> (metric name, type)
STAT_LINES: dict[bytes, tuple[str, str]] = {
    b"ctxt": ("system_context_switches_total", COUNTER),
    b"intr": ("system_interrupts_total", COUNTER),
    b"softirq": ("system_softirqs_total", COUNTER),
    b"processes": ("system_forks_total", COUNTER),
    b"procs_running": ("system_procs_running", GAUGE),
    b"procs_blocked": ("system_procs_blocked", GAUGE),
    b"btime": ("system_boot_time_seconds", GAUGE),
}


def read_proc_stat_counters(path: str) -> dict[bytes, int]:
    """Return the first number of each line of ``STAT_LINES`` found in /proc/stat."""
    with open(path, "rb") as handle:
        data = handle.read()
    out: dict[bytes, int] = {}
    for line in data.splitlines():
        if line.startswith(b"cpu"):
            continue
        key, _, rest = line.partition(b" ")
        if key in STAT_LINES:
            first = rest.lstrip().split(b" ", 1)[0]
            if first.isdigit():
                out[key] = int(first)
    return out


class KernelCollector(Collector):
    name = "kernel"
    description = (
        "Context switches, interrupts, softirqs and forks since boot, runnable and blocked tasks, boot time "
        "(/proc/stat)."
    )
    fields = {
        "system_context_switches_total": "counter, context switches since boot",
        "system_interrupts_total": "counter, interrupts serviced since boot (all IRQs)",
        "system_softirqs_total": "counter, softirqs serviced since boot",
        "system_forks_total": "counter, processes and threads created since boot",
        "system_procs_running": "gauge, tasks runnable now",
        "system_procs_blocked": "gauge, tasks blocked on I/O now",
        "system_boot_time_seconds": "gauge, Unix time the host booted",
    }

    def collect(self, now: float) -> SeriesList:
        counters = read_proc_stat_counters(self.paths.proc("stat"))
        return [
            series_dict(name, [[now, float(counters[key])]], None, kind)
            for key, (name, kind) in STAT_LINES.items()
            if key in counters
        ]
