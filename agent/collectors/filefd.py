"""System-wide file handles: allocated and the kernel's maximum (/proc/sys/fs/file-nr)."""

from __future__ import annotations

from agent.collectors.base import Collector, SeriesList
from shared.wire import series_dict


def read_file_nr(path: str) -> tuple[int, int]:
    """Return (allocated, maximum) file handles; the middle field is always 0 since Linux 2.6."""
    with open(path, "rb") as handle:
        allocated, _, maximum = handle.read().split()[:3]
    return int(allocated), int(maximum)


class FileFdCollector(Collector):
    name = "filefd"
    description = "File handles allocated system-wide and the kernel's limit (fs.file-max)."
    fields = {
        "system_filefd_allocated": "gauge, file handles allocated",
        "system_filefd_maximum": "gauge, most file handles the kernel allocates (fs.file-max)",
    }

    def collect(self, now: float) -> SeriesList:
        allocated, maximum = read_file_nr(self.paths.proc("sys", "fs", "file-nr"))
        return [
            series_dict("system_filefd_allocated", [[now, float(allocated)]]),
            series_dict("system_filefd_maximum", [[now, float(maximum)]]),
        ]
