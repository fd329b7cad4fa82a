"""FileTailer: follow log files (globs), handling rotation and truncation, exactly once.

Exactly-once delivery, given the workers' batch identity (agent id, epoch, seq):

- each generation of a file (a new inode, or the same inode after truncation) gets its own
  epoch from ``PositionStore.new_epoch`` (unique and increasing across restarts);
- a batch's seq is the byte offset of its first line in that generation, so it is fixed by
  the file position;
- before sending, the byte range [start, end) of the batch is written to the state file as
  ``pending``; after ``send`` returns (the transport has queued or spooled it) the position
  moves to ``end`` and ``pending`` is cleared.

If the agent dies between the send and the commit, the restarted tailer re-reads exactly
[start, end) and sends the same (epoch, seq) again, which the workers store once. Without the
pending range a restart could cut a different batch at the same seq (more lines having been
written since), and the workers would drop the new lines as a duplicate.

Rotation by rename keeps the open handle, so the old file is read to its end before it is
closed; the new file at the path is a new generation. Truncation (copytruncate) is noticed by
a size below the position or a changed fingerprint (a hash of the first bytes).
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, BinaryIO

from agent.logs.config import AgentInfo, FileSource, LogShipConfig
from agent.logs.lines import read_lines
from agent.logs.records import group_lines, parse_groups, start_matcher
from agent.logs.sending import Sender
from agent.logs.state import PositionStore
from shared.wire import encode_batch

log = logging.getLogger(__name__)
FINGERPRINT_BYTES = 256
MAX_BATCHES_PER_POLL = 20
MAX_REJECTION_REASONS = 20
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".zip")


@dataclass(slots=True)
class _Tracked:
    key: str
    path: str
    source: FileSource
    handle: BinaryIO
    offset: int
    epoch: int
    fingerprint: str
    fingerprint_len: int
    pending: list[int] | None
    last_size: int
    last_growth: float
    attached: bool = True


class FileTailer:
    """Tail every file matched by the sources' globs and send their records as logs batches."""

    def __init__(self, config: LogShipConfig, agent: AgentInfo, send: Sender, store: PositionStore) -> None:
        self.config = config
        self.agent = agent
        self.send = send
        self.store = store
        self.files: dict[str, _Tracked] = {}
        self.counters = {
            "lines_read": 0,
            "records_shipped": 0,
            "batches_sent": 0,
            "lines_rejected": 0,
            "lines_truncated": 0,
            "lines_invalid_utf8": 0,
            "file_truncations": 0,
            "files_opened": 0,
            "files_closed": 0,
            "send_errors": 0,
        }
        self.rejections: list[str] = []
        self._lock = threading.Lock()

    # -- discovery ---------------------------------------------------------------------------

    def scan(self) -> None:
        """Open files newly matched by the globs; mark tracked files no longer matched."""
        seen: dict[str, tuple[str, FileSource]] = {}
        for source in self.config.files:
            for pattern in source.paths:
                for path in sorted(glob.glob(pattern)):
                    if path.endswith(COMPRESSED_SUFFIXES):  # rotated and compressed: not text
                        continue
                    try:
                        st = os.stat(path)
                    except OSError:
                        continue
                    if os.path.isfile(path):
                        seen.setdefault(f"{st.st_dev}:{st.st_ino}", (path, source))
        for key, tracked in self.files.items():
            tracked.attached = key in seen
            if tracked.attached:
                tracked.path = seen[key][0]
        for key, (path, source) in seen.items():
            if key not in self.files:
                self._open(key, path, source)

    def _open(self, key: str, path: str, source: FileSource) -> None:
        try:
            handle = open(path, "rb")  # noqa: SIM115 - kept open across polls to survive renames
        except OSError as exc:
            log.warning("cannot open log file %s: %s", path, exc)
            return
        st = os.fstat(handle.fileno())
        if f"{st.st_dev}:{st.st_ino}" != key:  # replaced between stat and open; next scan gets it
            handle.close()
            return
        saved = self.store.file(key)
        tracked = _Tracked(key, path, source, handle, 0, 0, "", 0, None, st.st_size, time.monotonic())
        if saved and _fingerprint(handle, int(saved.get("fingerprint_len", 0))) == saved.get("fingerprint"):
            tracked.offset = int(saved["offset"])
            tracked.epoch = int(saved["epoch"])
            tracked.fingerprint = saved["fingerprint"]
            tracked.fingerprint_len = int(saved["fingerprint_len"])
            tracked.pending = saved.get("pending")
        else:
            tracked.epoch = self.store.new_epoch()
            self._persist(tracked)
        self.files[key] = tracked
        self.counters["files_opened"] += 1

    # -- reading -----------------------------------------------------------------------------

    def poll(self, final: bool = False) -> int:
        """Scan, then ship what is new in every file; return the number of records shipped."""
        with self._lock:
            self.scan()
            shipped = 0
            for tracked in list(self.files.values()):
                try:
                    shipped += self._poll_file(tracked, final)
                except OSError as exc:
                    log.warning("reading %s failed: %s", tracked.path, exc)
            return shipped

    def _poll_file(self, tracked: _Tracked, final: bool) -> int:
        self._check_truncation(tracked)
        shipped = 0
        for _ in range(MAX_BATCHES_PER_POLL):
            sent = self._ship_next(tracked, final)
            if sent is None:
                break
            shipped += sent
        if not tracked.attached and tracked.pending is None and self._idle(tracked, final):
            size = os.fstat(tracked.handle.fileno()).st_size
            if tracked.offset >= size:
                self._close(tracked)
        return shipped

    def _check_truncation(self, tracked: _Tracked) -> None:
        size = os.fstat(tracked.handle.fileno()).st_size
        if size != tracked.last_size:
            tracked.last_size = size
            tracked.last_growth = time.monotonic()
        replaced = tracked.fingerprint_len and _fingerprint(tracked.handle, tracked.fingerprint_len) != (
            tracked.fingerprint
        )
        if size < tracked.offset or replaced:
            self.counters["file_truncations"] += 1
            tracked.offset = 0
            tracked.pending = None
            tracked.fingerprint, tracked.fingerprint_len = "", 0
            tracked.epoch = self.store.new_epoch()
            self._persist(tracked)

    def _idle(self, tracked: _Tracked, final: bool) -> bool:
        return final or time.monotonic() - tracked.last_growth >= self.config.multiline_timeout

    def _ship_next(self, tracked: _Tracked, final: bool) -> int | None:
        """Send the next batch of a file; None when there is nothing (more) to send now."""
        cfg = self.config
        if tracked.pending is not None:
            start, end = tracked.pending
            lines, _ = read_lines(
                tracked.handle,
                start,
                max_record_bytes=cfg.max_record_bytes,
                max_lines=1 << 30,
                max_bytes=1 << 62,
                end_limit=end,
                take_partial=True,
            )
            groups = group_lines(lines, start_matcher(tracked.source))
        else:
            idle = self._idle(tracked, final)
            lines, at_eof = read_lines(
                tracked.handle,
                tracked.offset,
                max_record_bytes=cfg.max_record_bytes,
                max_lines=cfg.max_batch_records,
                max_bytes=cfg.max_batch_bytes,
                take_partial=idle,
            )
            groups = group_lines(lines, start_matcher(tracked.source))
            # The last record may still get continuation lines; wait for the writer to go quiet.
            if (
                _may_continue(tracked.source)
                and groups
                and not (at_eof and idle)
                and (at_eof or len(groups) > 1)
            ):
                groups.pop()
            if not groups:
                return None
            start, end = tracked.offset, groups[-1][-1].end
        return self._send_groups(tracked, groups, start, end)

    def _send_groups(self, tracked: _Tracked, groups: list[list[Any]], start: int, end: int) -> int | None:
        parsed = parse_groups(groups, tracked.source, tracked.path, self.config.max_record_bytes)
        self.counters["lines_read"] += sum(len(g) for g in groups)
        if parsed.records:
            tracked.pending = [start, end]
            self._persist(tracked)
            batch = encode_batch(
                kind="logs",
                agent_id=self.agent.agent_id,
                host=self.agent.host,
                agent_version=self.agent.version,
                epoch=tracked.epoch,
                seq=start,
                sent_at=time.time(),
                logs=parsed.records,
            )
            try:
                self.send(batch)
            except Exception as exc:  # the transport failed outright; the pending range is retried
                self.counters["send_errors"] += 1
                log.warning("sending logs of %s failed: %s", tracked.path, exc)
                return None
            self.counters["batches_sent"] += 1
            self.counters["records_shipped"] += len(parsed.records)
        self._count_parse(parsed)
        tracked.offset, tracked.pending = end, None
        self._persist(tracked)
        return len(parsed.records)

    def _count_parse(self, parsed: Any) -> None:
        self.counters["lines_rejected"] += len(parsed.rejected)
        self.counters["lines_truncated"] += parsed.truncated
        self.counters["lines_invalid_utf8"] += parsed.invalid_utf8
        for reason in parsed.rejected:
            log.warning("rejected log line: %s", reason)
        self.rejections = (self.rejections + parsed.rejected)[-MAX_REJECTION_REASONS:]

    # -- state -------------------------------------------------------------------------------

    def _persist(self, tracked: _Tracked) -> None:
        if tracked.fingerprint_len < FINGERPRINT_BYTES and tracked.offset > tracked.fingerprint_len:
            tracked.fingerprint_len = min(FINGERPRINT_BYTES, tracked.offset)
            tracked.fingerprint = _fingerprint(tracked.handle, tracked.fingerprint_len)
        self.store.put_file(
            tracked.key,
            {
                "path": tracked.path,
                "offset": tracked.offset,
                "epoch": tracked.epoch,
                "fingerprint": tracked.fingerprint,
                "fingerprint_len": tracked.fingerprint_len,
                "pending": tracked.pending,
            },
        )

    def _close(self, tracked: _Tracked) -> None:
        tracked.handle.close()
        del self.files[tracked.key]
        self.store.forget_file(tracked.key)
        self.counters["files_closed"] += 1

    def close(self) -> None:
        """Close every handle (positions stay in the state file)."""
        with self._lock:
            for tracked in self.files.values():
                tracked.handle.close()
            self.files.clear()

    def stats(self) -> dict[str, Any]:
        return {**self.counters, "files_tracked": len(self.files), "last_rejections": list(self.rejections)}


def _may_continue(source: FileSource) -> bool:
    """Return whether a record can span lines (text files, or any file with multiline_start)."""
    return source.format == "text" or source.multiline_start is not None


def _fingerprint(handle: BinaryIO, length: int) -> str:
    if length <= 0:
        return ""
    data = os.pread(handle.fileno(), length, 0)
    return hashlib.sha256(data).hexdigest() if len(data) == length else "short"
