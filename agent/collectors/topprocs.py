"""The process names using the most CPU and the most memory (top-N), from /proc/<pid>/stat.

Reading every process's ``stat`` file costs about 14 µs per process (most of it the kernel
formatting the file), 2 ms on a host with 150 processes: more than every other collector of
a cycle together. So the table is walked once per ``top_processes_interval`` (60 s by default)
and the CPU share is averaged over that window, which also makes it steadier than a 10 s one.

Series stay bounded: processes are grouped by name (``comm``, at most 15 characters; the 8
``postgres`` backends are one ``postgres``), and only the ``top_processes`` (5) names with the
most CPU and the 5 with the most resident memory are sent, each with the label ``process``.
No pid labels: a pid is new for every restart, a name is not. Memory is the sum of the group's
resident set sizes (shared pages counted once per process, as ``ps`` does).
"""

from __future__ import annotations

import heapq
import os
import time
from collections import defaultdict

from agent.collectors.base import Collector, SeriesList
from agent.collectors.hostpaths import DEFAULT_PATHS, HostPaths
from agent.collectors.options import DEFAULT_OPTIONS, CollectorOptions
from shared.wire import series_dict

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
# Indexes into the fields after ``comm)`` of /proc/<pid>/stat (proc(5) numbers minus 3).
UTIME, STIME, STARTTIME, RSS = 11, 12, 19, 21


# (pid, start time) -> (name, CPU ticks, resident bytes) of each process read in one walk
ProcessSample = dict[tuple[int, int], tuple[str, int, int]]


def read_processes(procfs: str) -> ProcessSample:
    """Read /proc/<pid>/stat of every process; those that end during the walk are skipped."""
    sample: ProcessSample = {}
    for entry in os.listdir(procfs):
        if not entry.isdigit():
            continue
        try:
            fd = os.open(f"{procfs}/{entry}/stat", os.O_RDONLY)
        except OSError:
            continue
        try:
            data = os.read(fd, 2048)
        except OSError:
            continue
        finally:
            os.close(fd)
        close = data.rfind(b")")
        fields = data[close + 2 :].split(b" ", RSS + 1)
        if close < 0 or len(fields) <= RSS:
            continue
        name = data[data.find(b"(") + 1 : close].decode("utf-8", "replace")
        ticks = int(fields[UTIME]) + int(fields[STIME])
        sample[(int(entry), int(fields[STARTTIME]))] = (name, ticks, int(fields[RSS]) * PAGE_BYTES)
    return sample


def cpu_percent_by_name(before: ProcessSample, after: ProcessSample, seconds: float) -> dict[str, float]:
    """Return each name's CPU use between two walks, in percent of one CPU (as top shows it).

    A process absent from ``before`` started after it (the key holds the start time, so a
    reused pid is a new process) and counts with all its ticks.
    """
    if seconds <= 0:
        return {}
    ticks: defaultdict[str, int] = defaultdict(int)
    for key, (name, now_ticks, _) in after.items():
        previous = before.get(key)
        ticks[name] += now_ticks - (previous[1] if previous is not None else 0)
    scale = 100.0 / (CLOCK_TICKS * seconds)
    return {name: used * scale for name, used in ticks.items() if used > 0}


def memory_by_name(sample: ProcessSample) -> dict[str, int]:
    """Return the summed resident bytes of each process name."""
    resident: defaultdict[str, int] = defaultdict(int)
    for name, _, rss in sample.values():
        resident[name] += rss
    return {name: value for name, value in resident.items() if value > 0}


def top(values: dict[str, float] | dict[str, int], count: int) -> list[tuple[str, float]]:
    """Return the ``count`` largest (name, value) pairs, largest first, ties by name."""
    return heapq.nlargest(count, ((name, float(v)) for name, v in values.items()), key=lambda p: (p[1], p[0]))


class TopProcessesCollector(Collector):
    name = "top_processes"
    description = (
        "The process names (processes grouped by name) with the most CPU and the most resident memory, "
        "top_processes of each (5), from a walk of /proc every top_processes_interval seconds (60)."
    )
    fields = {
        "system_process_cpu_percent": "gauge, percent of one CPU over the last walk interval, label process",
        "system_process_memory_bytes": "gauge, summed resident bytes, label process",
    }

    def __init__(self, paths: HostPaths = DEFAULT_PATHS, options: CollectorOptions = DEFAULT_OPTIONS) -> None:
        super().__init__(paths, options)
        self._previous = read_processes(paths.procfs)
        self._previous_at = time.monotonic()
        self._due_at = self._previous_at  # the first collect reports, over the time since start

    def collect(self, now: float) -> SeriesList:
        if time.monotonic() < self._due_at:
            return []
        current, at = read_processes(self.paths.procfs), time.monotonic()
        cpu = cpu_percent_by_name(self._previous, current, at - self._previous_at)
        self._previous, self._previous_at = current, at
        self._due_at = at + self.options.top_processes_interval
        count = self.options.top_processes
        series = [
            series_dict("system_process_cpu_percent", [[now, value]], {"process": name})
            for name, value in top(cpu, count)
        ]
        series += [
            series_dict("system_process_memory_bytes", [[now, value]], {"process": name})
            for name, value in top(memory_by_name(current), count)
        ]
        return series
