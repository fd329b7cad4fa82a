"""Persisted read positions of tailed files and the allocator of batch epochs.

The state file is rewritten atomically (temporary file, fsync, rename) so a crash leaves
either the old or the new positions, never a torn file.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

from shared.config import ConfigError

STATE_FILE = "logs-state.json"


class PositionStore:
    """A small JSON document: {"last_epoch": int, "files": {key: {...}}}."""

    def __init__(self, state_dir: str) -> None:
        os.makedirs(state_dir, exist_ok=True)
        self.path = os.path.join(state_dir, STATE_FILE)
        self._lock = threading.Lock()
        self.data: dict[str, Any] = {"last_epoch": 0, "files": {}}
        if os.path.exists(self.path):
            self.data = _load(self.path)

    def file(self, key: str) -> dict[str, Any] | None:
        return self.data["files"].get(key)

    def put_file(self, key: str, entry: dict[str, Any]) -> None:
        with self._lock:
            self.data["files"][key] = entry
            self._save()

    def forget_file(self, key: str) -> None:
        with self._lock:
            if self.data["files"].pop(key, None) is not None:
                self._save()

    def new_epoch(self) -> int:
        """Return an epoch (ms since 1970) larger than every epoch handed out before."""
        with self._lock:
            epoch = max(int(self.data.get("last_epoch", 0)) + 1, int(time.time() * 1000))
            self.data["last_epoch"] = epoch
            self._save()
            return epoch

    def _save(self) -> None:
        tmp = f"{self.path}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(self.data, handle, separators=(",", ":"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)


def _load(path: str) -> dict[str, Any]:
    """Read a state file, refusing (with what to do) one that is not ours or is damaged."""
    try:
        with open(path, encoding="utf-8") as handle:
            loaded = json.load(handle)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"log shipping state file {path} cannot be read ({exc}); move it away to start over "
            "(tailed files are then read again from their beginning)"
        ) from None
    if not isinstance(loaded, dict) or not isinstance(loaded.get("files"), dict):
        raise ConfigError(f"log shipping state file {path} has no 'files' map; move it away to start over")
    loaded.setdefault("last_epoch", 0)
    return loaded
