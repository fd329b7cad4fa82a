"""Settings a few collectors take besides the host paths (``[agent]`` keys, see docs/agent.md)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_TOP_PROCESSES = 5
DEFAULT_TOP_PROCESSES_INTERVAL = 60.0
DEFAULT_SYSTEMD_INTERVAL = 60.0


@dataclass(frozen=True, slots=True)
class CollectorOptions:
    """``top_processes``: how many process names by CPU and by memory; ``*_interval``: seconds between
    the process-table walk and between systemd queries (both cost more than a cycle's other reads)."""

    top_processes: int = DEFAULT_TOP_PROCESSES
    top_processes_interval: float = DEFAULT_TOP_PROCESSES_INTERVAL
    systemd_interval: float = DEFAULT_SYSTEMD_INTERVAL


DEFAULT_OPTIONS = CollectorOptions()
