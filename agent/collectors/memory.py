"""Physical memory and swap, from /proc/meminfo on Linux and psutil elsewhere."""

from __future__ import annotations

import os

import psutil

from agent.collectors.base import Collector, SeriesList
from shared.wire import series_dict

PROC_MEMINFO = "/proc/meminfo"
MEMINFO_KEYS = ("MemTotal:", "MemAvailable:", "SwapTotal:", "SwapFree:")


def read_meminfo(path: str = PROC_MEMINFO) -> dict[str, int]:
    """Return MemTotal, MemAvailable, SwapTotal and SwapFree in bytes (keys without the colon).

    One small file read; psutil also parses /proc/vmstat and computes fields the agent
    does not send (see bench/agent_cost.py).
    """
    values: dict[str, int] = {}
    with open(path, encoding="ascii") as handle:
        for line in handle:
            if line.startswith(MEMINFO_KEYS):
                name, amount = line.split()[:2]
                values[name[:-1]] = int(amount) * 1024  # the file says kB and means KiB
    return values


def read_memory(meminfo: str = PROC_MEMINFO) -> tuple[int, int]:
    """Return (total, available) bytes of physical memory."""
    if os.path.exists(meminfo):
        info = read_meminfo(meminfo)
        if "MemAvailable" in info:  # kernels before 3.14 lack it; psutil estimates it
            return info["MemTotal"], info["MemAvailable"]
    mem = psutil.virtual_memory()
    return mem.total, mem.available


def read_swap(meminfo: str = PROC_MEMINFO) -> tuple[int, int]:
    """Return (total, used) bytes of swap."""
    if os.path.exists(meminfo):
        info = read_meminfo(meminfo)
        total = info.get("SwapTotal", 0)
        return total, total - info.get("SwapFree", 0)
    swap = psutil.swap_memory()
    return swap.total, swap.used


def _percent(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole else 0.0


class MemoryCollector(Collector):
    name = "memory"
    description = "Physical memory; 'available' is what new processes can get without swapping."
    fields = {
        "system_memory_usage_percent": "gauge, percent 0-100 of total not available",
        "system_memory_used_bytes": "gauge, bytes (total - available)",
        "system_memory_available_bytes": "gauge, bytes",
        "system_memory_total_bytes": "gauge, bytes",
    }

    def collect(self, now: float) -> SeriesList:
        total, available = read_memory(self.paths.proc("meminfo"))
        used = total - available
        return [
            series_dict("system_memory_usage_percent", [[now, _percent(used, total)]]),
            series_dict("system_memory_used_bytes", [[now, float(used)]]),
            series_dict("system_memory_available_bytes", [[now, float(available)]]),
            series_dict("system_memory_total_bytes", [[now, float(total)]]),
        ]


class SwapCollector(Collector):
    name = "swap"
    description = "Swap space in use (0 when the host has no swap)."
    fields = {
        "system_swap_usage_percent": "gauge, percent 0-100",
        "system_swap_used_bytes": "gauge, bytes",
    }

    def collect(self, now: float) -> SeriesList:
        total, used = read_swap(self.paths.proc("meminfo"))
        return [
            series_dict("system_swap_usage_percent", [[now, _percent(used, total)]]),
            series_dict("system_swap_used_bytes", [[now, float(used)]]),
        ]
