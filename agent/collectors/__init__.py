"""Host metric collectors, one class per metric group, and the registry of their names."""

from __future__ import annotations

from agent.collectors.base import Collector, CollectorSet
from agent.collectors.connections import ConnectionsCollector, ProcessesCollector
from agent.collectors.cpu import CpuCollector
from agent.collectors.disk import DiskIOCollector, DiskUsageCollector
from agent.collectors.filefd import FileFdCollector
from agent.collectors.gpu import GpuCollector
from agent.collectors.hostpaths import DEFAULT_PATHS, HostPaths
from agent.collectors.kernel import KernelCollector
from agent.collectors.load import LoadCollector
from agent.collectors.memory import MemoryCollector, SwapCollector
from agent.collectors.network import NetworkCollector
from agent.collectors.options import DEFAULT_OPTIONS, CollectorOptions
from agent.collectors.pressure import PressureCollector
from agent.collectors.systemd import SystemdCollector
from agent.collectors.topprocs import TopProcessesCollector

REGISTRY: dict[str, type[Collector]] = {
    cls.name: cls
    for cls in (
        CpuCollector,
        LoadCollector,
        MemoryCollector,
        SwapCollector,
        DiskUsageCollector,
        DiskIOCollector,
        NetworkCollector,
        ConnectionsCollector,
        ProcessesCollector,
        KernelCollector,
        FileFdCollector,
        PressureCollector,
        TopProcessesCollector,
        SystemdCollector,
        GpuCollector,
    )
}


def build_collectors(
    names: list[str], paths: HostPaths = DEFAULT_PATHS, options: CollectorOptions = DEFAULT_OPTIONS
) -> CollectorSet:
    """Instantiate the named collectors reading the host through ``paths`` (psutil included)."""
    paths.apply_to_psutil()
    return CollectorSet([REGISTRY[name](paths, options) for name in names])


__all__ = [
    "DEFAULT_OPTIONS",
    "DEFAULT_PATHS",
    "REGISTRY",
    "Collector",
    "CollectorOptions",
    "CollectorSet",
    "HostPaths",
    "build_collectors",
]
