"""Where the collectors find the host's /proc and root filesystem.

On a plain install both are the agent's own (``/proc``, ``/``). In a container the host's
``/proc`` is mounted somewhere else (``FLEETWATCH_AGENT_PROCFS=/host/proc``) and, for disk
usage, the host's ``/`` as well (``FLEETWATCH_AGENT_HOSTFS=/host/root``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil

DEFAULT_PROCFS = "/proc"


@dataclass(frozen=True, slots=True)
class HostPaths:
    """The host's procfs and (optionally) the directory its root filesystem is mounted at."""

    procfs: str = DEFAULT_PROCFS
    hostfs: str = ""

    def proc(self, *parts: str) -> str:
        """Return the path of a file under the host's procfs, e.g. ``proc("net", "dev")``."""
        return os.path.join(self.procfs, *parts)

    def on_host(self, mountpoint: str) -> str:
        """Return where the host's ``mountpoint`` is seen from here (``<hostfs><mountpoint>``)."""
        if not self.hostfs:
            return mountpoint
        return os.path.join(self.hostfs, mountpoint.lstrip("/"))

    def apply_to_psutil(self) -> None:
        """Point psutil (CPU times, mounts, fallbacks) at the same procfs; it is process-wide."""
        psutil.PROCFS_PATH = self.procfs


DEFAULT_PATHS = HostPaths()
