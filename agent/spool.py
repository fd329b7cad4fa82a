"""A bounded, append-only on-disk queue of batches that Redis could not take yet.

Layout, in one directory per stream kind::

    00000000000000000001.seg   records: [u32 length][u32 crc32][payload] ...
    00000000000000000002.seg   (segments are written in order and never rewritten)
    cursor.json                {"segment": 1, "offset": 4711, "records": 12}  read position

Batches are appended to the newest segment and read from the oldest, so replay is
oldest first. A segment is deleted once every record in it was delivered. When the
pending bytes pass the cap, whole segments are dropped from the oldest end and the
batches they held are counted in ``dropped_batches``. Segments are sized at most an
eighth of the cap, so a drop loses at most about 1/8 of the spool. A torn record at
the end of a segment (crash mid-write) is cut off at start-up and counted as dropped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger("agent.spool")

HEADER = struct.Struct("<II")
MAX_SEGMENT_BYTES = 1024 * 1024
SEGMENTS_PER_CAP = 8
SUFFIX = ".seg"
CURSOR_FILE = "cursor.json"


@dataclass(slots=True)
class _Segment:
    number: int
    path: Path
    size: int = 0
    records: int = 0


class Spool:
    """Bounded FIFO of byte strings on disk, surviving restarts."""

    def __init__(self, directory: Path, cap_bytes: int) -> None:
        if cap_bytes <= 0:
            raise ValueError("spool cap must be positive")
        self.directory = directory
        self.cap_bytes = cap_bytes
        self.segment_bytes = max(1, min(MAX_SEGMENT_BYTES, cap_bytes // SEGMENTS_PER_CAP))
        self.dropped_batches = 0
        self._segments: list[_Segment] = []
        self._read_offset = 0
        self._read_records = 0
        self._writer: BinaryIO | None = None
        self._peeked: list[int] = []
        self._drop_logged = False  # one warning per overflow episode, not one per batch
        self._write_error_logged = False
        directory.mkdir(parents=True, exist_ok=True)
        self._recover()

    # -- sizes -------------------------------------------------------------------------------
    @property
    def pending_bytes(self) -> int:
        return sum(seg.size for seg in self._segments) - self._read_offset

    @property
    def pending_batches(self) -> int:
        return sum(seg.records for seg in self._segments) - self._read_records

    # -- writing -----------------------------------------------------------------------------
    def append(self, payload: bytes) -> None:
        """Queue one batch; drop (and count) the oldest batches if the cap is passed."""
        record_size = HEADER.size + len(payload)
        if record_size > self.cap_bytes:
            self.dropped_batches += 1
            log.warning("batch of %d bytes is larger than the spool cap; dropped", len(payload))
            return
        try:
            segment = self._writable_segment(record_size)
            assert self._writer is not None
            self._writer.write(HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
            self._writer.flush()
        except OSError as exc:  # disk full, state dir gone: lose this batch, not the agent
            self._write_failed(exc)
            return
        segment.size += record_size
        segment.records += 1
        self._write_error_logged = False
        self._enforce_cap()

    def _write_failed(self, exc: OSError) -> None:
        self.dropped_batches += 1
        if not self._write_error_logged:
            self._write_error_logged = True
            log.error(
                "cannot write to the spool in %s (%s); batches are dropped and counted", self.directory, exc
            )
        if self._writer is not None and self._segments:
            # cut a partly written record off, so the segment stays readable
            segment = self._segments[-1]
            try:
                self._writer.close()
                os.truncate(segment.path, segment.size)
            except OSError:
                pass
            self._writer = None

    def _writable_segment(self, record_size: int) -> _Segment:
        active = self._segments[-1] if self._writer is not None and self._segments else None
        if active is not None and active.size + record_size <= self.segment_bytes:
            return active
        self._close_writer()
        number = self._segments[-1].number + 1 if self._segments else self._next_number_hint()
        segment = _Segment(number, self.directory / f"{number:020d}{SUFFIX}")
        self._writer = segment.path.open("ab")
        self._segments.append(segment)
        return segment

    def _enforce_cap(self) -> None:
        while self.pending_bytes > self.cap_bytes and self._segments:
            head = self._segments[0]
            lost = head.records - self._read_records
            self.dropped_batches += lost
            if not self._drop_logged:
                self._drop_logged = True
                log.warning(
                    "spool reached its %d-byte cap: dropping the oldest batches (counted in "
                    "agent_spool_dropped_batches_total; logged once until the spool empties)",
                    self.cap_bytes,
                )
            self._remove_head()

    # -- reading -----------------------------------------------------------------------------
    def peek(self, limit: int) -> list[bytes]:
        """Return up to ``limit`` of the oldest pending batches (from the oldest segment)."""
        self._peeked = []
        if not self._segments or self.pending_batches == 0:
            return []
        head = self._segments[0]
        out: list[bytes] = []
        with head.path.open("rb") as handle:
            handle.seek(self._read_offset)
            while len(out) < limit:
                record = _read_record(handle)
                if record is None:
                    break
                out.append(record)
                self._peeked.append(HEADER.size + len(record))
        return out

    def commit(self, count: int) -> None:
        """Mark the first ``count`` peeked batches as delivered."""
        if count <= 0:  # nothing delivered: the read position and its file stay as they are
            self._peeked = []
            return
        for size in self._peeked[:count]:
            self._read_offset += size
            self._read_records += 1
        self._peeked = []
        head = self._segments[0] if self._segments else None
        if head is None:
            self._drop_logged = False
            return
        if self._read_records >= head.records:
            self._remove_head()
            if not self._segments:
                self._drop_logged = False
        else:
            self._write_cursor(head.number)

    def _remove_head(self) -> None:
        head = self._segments.pop(0)
        if not self._segments:
            self._close_writer()
        self._read_offset = 0
        self._read_records = 0
        self._write_cursor(head.number + 1)
        with contextlib.suppress(FileNotFoundError):
            head.path.unlink()

    # -- persistence -------------------------------------------------------------------------
    def _write_cursor(self, number: int) -> None:
        tmp = self.directory / (CURSOR_FILE + ".tmp")
        state = {"segment": number, "offset": self._read_offset, "records": self._read_records}
        tmp.write_text(json.dumps(state), encoding="utf-8")
        os.replace(tmp, self.directory / CURSOR_FILE)

    def _read_cursor(self) -> tuple[int, int, int]:
        try:
            state = json.loads((self.directory / CURSOR_FILE).read_text(encoding="utf-8"))
            return int(state["segment"]), int(state["offset"]), int(state["records"])
        except FileNotFoundError:
            return 0, 0, 0
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("spool cursor unreadable (%s); replaying from the oldest segment", exc)
            return 0, 0, 0

    def _next_number_hint(self) -> int:
        return max(self._read_cursor()[0], 1)

    def _recover(self) -> None:
        """Load the segments left by an earlier run, cutting off torn tails."""
        cursor_segment, cursor_offset, cursor_records = self._read_cursor()
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            try:
                number = int(path.stem)
            except ValueError:
                continue
            if number < cursor_segment:  # delivered before a crash, not yet deleted
                path.unlink(missing_ok=True)
                continue
            self._segments.append(self._scan(number, path))
        if self._segments and self._segments[0].number == cursor_segment:
            self._read_offset = min(cursor_offset, self._segments[0].size)
            self._read_records = min(cursor_records, self._segments[0].records)
        self._segments = [seg for seg in self._segments if seg.records > 0 or seg.size > 0]
        if self._segments and self._read_records >= self._segments[0].records:
            self._remove_head()
        if self._segments:
            log.info(
                "spool holds %d batches (%d bytes) from an earlier run",
                self.pending_batches,
                self.pending_bytes,
            )

    def _scan(self, number: int, path: Path) -> _Segment:
        segment = _Segment(number, path)
        with path.open("rb") as handle:
            while (record := _read_record(handle)) is not None:
                segment.size += HEADER.size + len(record)
                segment.records += 1
            torn = handle.seek(0, os.SEEK_END) - segment.size
        if torn:
            self.dropped_batches += 1
            log.warning("spool segment %s had %d bytes of a torn or corrupt record; cut off", path.name, torn)
            os.truncate(path, segment.size)
        return segment

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def close(self) -> None:
        self._close_writer()


def _read_record(handle: BinaryIO) -> bytes | None:
    header = handle.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    length, crc = HEADER.unpack(header)
    payload = handle.read(length)
    if len(payload) < length or zlib.crc32(payload) != crc:
        return None
    return payload
