"""Filesystem usage per real mount, and block-device I/O counters."""

from __future__ import annotations

import logging
import os
import time
from functools import partial
from typing import NamedTuple

import psutil

from agent.collectors.base import Collector, SeriesList
from agent.collectors.hostpaths import DEFAULT_PATHS, HostPaths
from agent.collectors.mounts import host_mounts
from agent.collectors.options import DEFAULT_OPTIONS, CollectorOptions
from shared.wire import COUNTER, GAUGE, series_dict

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
        "system_disk_total_bytes": "gauge, bytes, size of the filesystem",
        "system_disk_inodes": "gauge, inodes (file nodes) of the filesystem; 0 where it has no fixed count",
        "system_disk_inodes_free": "gauge, inodes free",
        "system_disk_readonly": "gauge, 1 if mounted read-only, else 0",
    }

    def __init__(self, paths: HostPaths = DEFAULT_PATHS, options: CollectorOptions = DEFAULT_OPTIONS) -> None:
        super().__init__(paths, options)
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
                st = os.statvfs(self.paths.on_host(mountpoint))
            except OSError as exc:  # unmounted since the list was read, or no permission
                if mountpoint not in self._unreadable:
                    self._unreadable.add(mountpoint)
                    log.info("skipping %s: %s", mountpoint, exc)
                continue
            labels = {"mountpoint": mountpoint, "device": device, "fstype": fstype}
            series += [
                series_dict(name, [[now, value]], labels) for name, value in filesystem_values(st).items()
            ]
        return series


def filesystem_values(st: os.statvfs_result) -> dict[str, float]:
    """Return the usage series' values of one statvfs result, computed as psutil.disk_usage does."""
    total = st.f_blocks * st.f_frsize
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    free = st.f_bavail * st.f_frsize  # what non-root users may still use
    usable = used + free
    return {
        "system_disk_usage_percent": round(100.0 * used / usable, 1) if usable else 0.0,
        "system_disk_used_bytes": float(used),
        "system_disk_free_bytes": float(free),
        "system_disk_total_bytes": float(total),
        "system_disk_inodes": float(st.f_files),
        "system_disk_inodes_free": float(st.f_ffree),
        "system_disk_readonly": 1.0 if st.f_flag & os.ST_RDONLY else 0.0,
    }


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


class DiskCounters(NamedTuple):
    """One block device's line of /proc/diskstats (bytes and seconds; times are what the kernel counts)."""

    read_bytes: int
    written_bytes: int
    reads: int
    writes: int
    read_seconds: float
    write_seconds: float
    io_now: int
    io_seconds: float
    io_weighted_seconds: float


# metric name -> DiskCounters field; the first four are the original set (docs/contracts.md)
DISK_IO_METRICS = (
    ("system_disk_read_bytes_total", "read_bytes", COUNTER),
    ("system_disk_written_bytes_total", "written_bytes", COUNTER),
    ("system_disk_reads_total", "reads", COUNTER),
    ("system_disk_writes_total", "writes", COUNTER),
    ("system_disk_read_time_seconds_total", "read_seconds", COUNTER),
    ("system_disk_write_time_seconds_total", "write_seconds", COUNTER),
    ("system_disk_io_now", "io_now", GAUGE),
    ("system_disk_io_time_seconds_total", "io_seconds", COUNTER),
    ("system_disk_io_time_weighted_seconds_total", "io_weighted_seconds", COUNTER),
)


class DiskIOCollector(Collector):
    name = "diskio"
    description = "Cumulative I/O per block device since boot (loop, ram and zram devices skipped)."
    fields = {
        "system_disk_read_bytes_total": "counter, bytes, label device",
        "system_disk_written_bytes_total": "counter, bytes, label device",
        "system_disk_reads_total": "counter, completed read operations, label device",
        "system_disk_writes_total": "counter, completed write operations, label device",
        "system_disk_read_time_seconds_total": "counter, seconds spent by all reads, label device",
        "system_disk_write_time_seconds_total": "counter, seconds spent by all writes, label device",
        "system_disk_io_now": "gauge, I/Os in progress, label device",
        "system_disk_io_time_seconds_total": "counter, seconds the device was busy, label device",
        "system_disk_io_time_weighted_seconds_total": "counter, busy seconds weighted by queue, label device",
    }

    def __init__(self, paths: HostPaths = DEFAULT_PATHS, options: CollectorOptions = DEFAULT_OPTIONS) -> None:
        super().__init__(paths, options)
        diskstats = paths.proc("diskstats")
        self._read = (
            partial(read_diskstats, diskstats) if os.path.exists(diskstats) else read_psutil_diskstats
        )

    def collect(self, now: float) -> SeriesList:
        series: SeriesList = []
        for device, counters in sorted(self._read().items()):
            if device.startswith(SKIPPED_DEVICE_PREFIXES):
                continue
            labels = {"device": device}
            series += [
                series_dict(name, [[now, float(getattr(counters, field))]], labels, kind)
                for name, field, kind in DISK_IO_METRICS
            ]
        return series


def read_diskstats(path: str = PROC_DISKSTATS) -> dict[str, DiskCounters]:
    """Return every device's counters from the kernel's table (Documentation/admin-guide/iostats.rst).

    One file read instead of psutil's extra sysfs look-ups per device (see bench/agent_cost.py).
    """
    out: dict[str, DiskCounters] = {}
    with open(path, "rb") as handle:
        lines = handle.read().splitlines()
    for line in lines:
        fields = line.split()
        if len(fields) < 14:
            continue
        reads, _, sectors_read, read_ms, writes, _, sectors_written, write_ms, io_now, io_ms, weighted_ms = (
            map(int, fields[3:14])
        )
        out[fields[2].decode("ascii", "replace")] = DiskCounters(
            sectors_read * SECTOR_BYTES,
            sectors_written * SECTOR_BYTES,
            reads,
            writes,
            read_ms / 1000.0,
            write_ms / 1000.0,
            io_now,
            io_ms / 1000.0,
            weighted_ms / 1000.0,
        )
    return out


def read_proc_diskstats(path: str = PROC_DISKSTATS) -> dict[str, tuple[int, int, int, int]]:
    """Return device -> (read bytes, written bytes, reads, writes)."""
    return {device: c[:4] for device, c in read_diskstats(path).items()}


def read_psutil_diskstats() -> dict[str, DiskCounters]:
    """Return the same counters through psutil (hosts without /proc/diskstats; missing ones are 0)."""
    counters = psutil.disk_io_counters(perdisk=True, nowrap=True) or {}
    return {
        device: DiskCounters(
            io.read_bytes,
            io.write_bytes,
            io.read_count,
            io.write_count,
            io.read_time / 1000.0,
            io.write_time / 1000.0,
            0,
            getattr(io, "busy_time", 0) / 1000.0,
            0.0,
        )
        for device, io in counters.items()
    }


def read_psutil_disk_io() -> dict[str, tuple[int, int, int, int]]:
    """Return (read bytes, written bytes, reads, writes) per device through psutil."""
    return {device: c[:4] for device, c in read_psutil_diskstats().items()}
