"""The mount table of the host's init process, for an agent whose own mounts are a container's.

In a container ``/proc/self/mounts`` (what psutil reads) lists the container's filesystems.
With the host's process table (``pid: host``) the host's are in ``<procfs>/1/mounts``: the
mounts of PID 1, which lives in the host's mount namespace.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from agent.collectors.hostpaths import HostPaths

# /proc/<pid>/mounts escapes space, tab, newline and backslash as three octal digits.
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


class Mount(NamedTuple):
    device: str
    mountpoint: str
    fstype: str


def unescape(field: str) -> str:
    """Undo the kernel's octal escapes (``/mnt/my\\040disk`` -> ``/mnt/my disk``)."""
    return _OCTAL_ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), field)


def disk_fstypes(filesystems: str) -> set[str] | None:
    """Return the filesystem types backed by a device (not ``nodev``, but zfs), None if unreadable.

    The same rule as ``psutil.disk_partitions(all=False)``.
    """
    try:
        with open(filesystems, encoding="ascii") as handle:
            lines = [line.split() for line in handle if line.strip()]
    except OSError:
        return None
    return {fields[-1] for fields in lines if fields[0] != "nodev" or fields[-1] == "zfs"}


def host_mounts(paths: HostPaths) -> list[Mount]:
    """Return the mounts of the host's PID 1 that are backed by a device."""
    allowed = disk_fstypes(paths.proc("filesystems"))
    mounts: list[Mount] = []
    with open(paths.proc("1", "mounts"), encoding="utf-8", errors="replace") as handle:
        for line in handle:
            fields = line.split()
            if len(fields) < 3:
                continue
            device, mountpoint, fstype = (unescape(field) for field in fields[:3])
            if allowed is None or fstype in allowed:
                mounts.append(Mount(device, mountpoint, fstype))
    return mounts
