"""CPU usage, total and per core, from the deltas of /proc/stat (one psutil call per cycle)."""

from __future__ import annotations

import time
from typing import Any

import psutil

from agent.collectors.base import Collector, SeriesList
from agent.collectors.hostpaths import DEFAULT_PATHS, HostPaths
from agent.collectors.options import DEFAULT_OPTIONS, CollectorOptions
from shared.wire import series_dict

# Two samples closer than this give a meaningless percentage; the first collect waits.
MIN_SAMPLE_GAP = 0.1


def _busy_and_total(times: Any) -> tuple[float, float]:
    """Return (busy, total) seconds; guest time is already counted in user/nice on Linux."""
    total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
    idle = times.idle + getattr(times, "iowait", 0.0)
    return total - idle, total


def _percent(before: tuple[float, float], after: tuple[float, float]) -> float:
    busy = after[0] - before[0]
    total = after[1] - before[1]
    if total <= 0:
        return 0.0
    return min(100.0, max(0.0, 100.0 * busy / total))


class CpuCollector(Collector):
    name = "cpu"
    description = "CPU busy time as a share of elapsed CPU time since the previous cycle."
    fields = {
        "system_cpu_usage_percent": "gauge, percent 0-100; no labels = all cores, label core=N per core",
    }

    def __init__(self, paths: HostPaths = DEFAULT_PATHS, options: CollectorOptions = DEFAULT_OPTIONS) -> None:
        super().__init__(paths, options)
        self._previous = self._sample()
        self._previous_at = time.monotonic()

    @staticmethod
    def _sample() -> list[tuple[float, float]]:
        return [_busy_and_total(times) for times in psutil.cpu_times(percpu=True)]

    def collect(self, now: float) -> SeriesList:
        gap = time.monotonic() - self._previous_at
        if gap < MIN_SAMPLE_GAP:
            time.sleep(MIN_SAMPLE_GAP - gap)
        current = self._sample()
        before, self._previous, self._previous_at = self._previous, current, time.monotonic()
        if len(before) != len(current):  # a CPU went on- or offline: start over
            return []
        total_before = (sum(b for b, _ in before), sum(t for _, t in before))
        total_now = (sum(b for b, _ in current), sum(t for _, t in current))
        series = [series_dict("system_cpu_usage_percent", [[now, _percent(total_before, total_now)]])]
        for core, (old, new) in enumerate(zip(before, current, strict=True)):
            series.append(
                series_dict("system_cpu_usage_percent", [[now, _percent(old, new)]], {"core": str(core)})
            )
        return series
