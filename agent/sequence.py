"""Batch sequence numbers that survive a restart, written to disk once per block.

A batch's identity is (agent id, epoch, seq). Writing the file for every batch
would cost an fsync per cycle, so the file records a *reservation*: the first
sequence number not yet handed out by anyone. Taking a number below the
reservation costs nothing; reaching it writes ``next + BLOCK`` first. A crash
therefore skips at most BLOCK numbers (gaps are allowed; going backwards is not),
and a clean stop writes the exact next number so a restart continues without a gap.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

log = logging.getLogger("agent.sequence")

BLOCK = 1000


class SequenceFile:
    """Hand out increasing sequence numbers for one stream kind; persist them cheaply."""

    def __init__(self, path: Path, block: int = BLOCK, read_only: bool = False) -> None:
        self.path = path
        self.block = block
        self.read_only = read_only
        self.epoch, self._next = self._load()
        self._reserved = self._next
        self.writes = 0

    def _load(self) -> tuple[int, int]:
        try:
            state = json.loads(self.path.read_text(encoding="utf-8"))
            epoch, next_seq = int(state["epoch"]), int(state["next"])
            if epoch > 0 and next_seq >= 0:
                return epoch, next_seq
            raise ValueError("negative values")
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("sequence file %s unreadable (%s); starting a new epoch", self.path, exc)
        return int(time.time() * 1000), 0

    def take(self) -> int:
        """Return the next sequence number."""
        if self._next >= self._reserved:
            self._reserved = self._next + self.block
            self._write(self._reserved)
        seq = self._next
        self._next += 1
        return seq

    def save(self) -> None:
        """Record the exact next number (clean shutdown), so a restart leaves no gap."""
        self._write(self._next)
        self._reserved = self._next

    def _write(self, next_seq: int) -> None:
        if self.read_only:  # --once --print: show what the next batch would be, change nothing
            return
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            json.dump({"epoch": self.epoch, "next": next_seq}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        self.writes += 1
