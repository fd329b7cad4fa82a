"""Filesystem usage per real mount, and block-device I/O counters."""

from __future__ import annotations

import logging
import os
import time
from functools import partial

import psutil

from agent.collectors.base import Collector, SeriesList
from agent.collectors.hostpaths import DEFAULT_PATHS, HostPaths
from agent.collectors.mounts import host_mounts
from shared.wire import COUNTER, series_dict

log = logging.getLogger("agent.collectors.disk")

# psutil.disk_partitions(all=False) already drops filesystems the kernel marks "nodev"
# (proc, sysfs, tmpfs, cgroup, overlay, ...); these are skipped as well because they hold
# no disk space of their own or are read-only images.
PSEUDO_FSTYPES = frozenset(
    {
        "proc",
        "sysfs",
        "tmpfs",
        "devtmpfs",
        "devpts",
        "overlay",
        "squashfs",
        "iso9660",
        "autofs",
        "nsfs",
        "cgroup",
        "cgroup2",
        "debugfs",
        "tracefs",
        "securityfs",
        "pstore",
        "bpf",
        "fusectl",
        "configfs",
        "mqueue",
        "hugetlbfs",
        "ramfs",
        "binfmt_misc",
        "rpc_pipefs",
        "nfsd",
        "fuse.lxcfs",
        "efivarfs",
    }
)
# Block devices with no disk behind them, or partitions already counted in their disk's totals.
SKIPPED_DEVICE_PREFIXES = ("loop", "ram", "zram", "fd", "sr")
PARTITION_REFRESH_SECONDS = 60.0
PROC_DISKSTATS = "/proc/diskstats"
SECTOR_BYTES = 512  # /proc/diskstats counts 512-byte sectors whatever the device's sector size


class DiskUsageCollector(Collector):
    name = "disk"
    description = (
        "Space on each real mounted filesystem (one series per device: bind mounts of the same device are "
        "reported once, at the shortest mountpoint). The mount list is re-read every 60 s."
    )
    fields = {
        "system_disk_usage_percent": "gauge, percent 0-100 of the space usable by non-root users",
        "system_disk_used_bytes": "gauge, bytes",
        "system_disk_free_bytes": "gauge, bytes available to non-root users",
    }

    def __init__(self, paths: HostPaths = DEFAULT_PATHS) -> None:
        super().__init__(paths)
        self._mounts: list[tuple[str, str, str]] = []
        self._mounts_read_at = float("-inf")
        self._unreadable: set[str] = set()

    def _current_mounts(self) -> list[tuple[str, str, str]]:
        if time.monotonic() - self._mounts_read_at >= PARTITION_REFRESH_SECONDS:
            self._mounts = real_mounts(self.paths)
            self._mounts_read_at = time.monotonic()
        return self._mounts

    def collect(self, now: float) -> SeriesList:
        series: SeriesList = []
        for mountpoint, device, fstype in self._current_mounts():
            try:  # statvfs through the host's root when it is mounted elsewhere (a container)
                usage = psutil.disk_usage(self.paths.on_host(mountpoint))
            except OSError as exc:  # unmounted since the list was read, or no permission
                if mountpoint not in self._unreadable:
                    self._unreadable.add(mountpoint)
                    log.info("skipping %s: %s", mountpoint, exc)
                continue
            labels = {"mountpoint": mountpoint, "device": device, "fstype": fstype}
            series += [
                series_dict("system_disk_usage_percent", [[now, float(usage.percent)]], labels),
                series_dict("system_disk_used_bytes", [[now, float(usage.used)]], labels),
                series_dict("system_disk_free_bytes", [[now, float(usage.free)]], labels),
            ]
        return series


def real_mounts(paths: HostPaths = DEFAULT_PATHS) -> list[tuple[str, str, str]]:
    """Return (mountpoint, device, fstype) of each real filesystem, one per device.

    With a host filesystem (``paths.hostfs``) the mount table is the host's (``<procfs>/1/mounts``);
    otherwise it is the agent's own, through psutil.
    """
    by_device: dict[str, tuple[str, str, str]] = {}
    partitions = host_mounts(paths) if paths.hostfs else psutil.disk_partitions(all=False)
    for part in partitions:
        if part.fstype in PSEUDO_FSTYPES or not part.fstype:
            continue
        device = part.device or part.mountpoint
        known = by_device.get(device)
        if known is None or len(part.mountpoint) < len(known[0]):
            by_device[device] = (part.mountpoint, device, part.fstype)
    return sorted(by_device.values())


class DiskIOCollector(Collector):
    name = "diskio"
    description = "Cumulative I/O per block device since boot (loop, ram and zram devices skipped)."
    fields = {
        "system_disk_read_bytes_total": "counter, bytes, label device",
        "system_disk_written_bytes_total": "counter, bytes, label device",
        "system_disk_reads_total": "counter, completed read operations, label device",
        "system_disk_writes_total": "counter, completed write operations, label device",
    }

    def __init__(self, paths: HostPaths = DEFAULT_PATHS) -> None:
        super().__init__(paths)
        diskstats = paths.proc("diskstats")
        self._read = (
            partial(read_proc_diskstats, diskstats) if os.path.exists(diskstats) else read_psutil_disk_io
        )

    def collect(self, now: float) -> SeriesList:
        series: SeriesList = []
        for device, (read_bytes, written_bytes, reads, writes) in sorted(self._read().items()):
            if device.startswith(SKIPPED_DEVICE_PREFIXES):
                continue
            labels = {"device": device}
            series += [
                series_dict("system_disk_read_bytes_total", [[now, float(read_bytes)]], labels, COUNTER),
                series_dict(
                    "system_disk_written_bytes_total", [[now, float(written_bytes)]], labels, COUNTER
                ),
                series_dict("system_disk_reads_total", [[now, float(reads)]], labels, COUNTER),
                series_dict("system_disk_writes_total", [[now, float(writes)]], labels, COUNTER),
            ]
        return series


def read_proc_diskstats(path: str = PROC_DISKSTATS) -> dict[str, tuple[int, int, int, int]]:
    """Return device -> (read bytes, written bytes, reads, writes) from the kernel's table.

    One file read instead of psutil's extra sysfs look-ups per device (see bench/agent_cost.py).
    """
    out: dict[str, tuple[int, int, int, int]] = {}
    with open(path, encoding="ascii") as handle:
        for line in handle:
            fields = line.split()
            if len(fields) < 10:
                continue
            reads, sectors_read, writes, sectors_written = (int(fields[i]) for i in (3, 5, 7, 9))
            out[fields[2]] = (sectors_read * SECTOR_BYTES, sectors_written * SECTOR_BYTES, reads, writes)
    return out


def read_psutil_disk_io() -> dict[str, tuple[int, int, int, int]]:
    """Return the same counters through psutil (hosts without /proc/diskstats)."""
    counters = psutil.disk_io_counters(perdisk=True, nowrap=True) or {}
    return {
        device: (io.read_bytes, io.write_bytes, io.read_count, io.write_count)
        for device, io in counters.items()
    }
