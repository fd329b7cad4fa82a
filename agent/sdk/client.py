"""AgentClient: send messages to the agent's Unix datagram socket without ever blocking.

A datagram socket in non-blocking mode either queues the whole message at once or fails at
once: ENOENT/ECONNREFUSED when the agent is not running, EAGAIN when its queue is full.
Every failure is counted (``dropped``) or, when ``fallback_path`` is set, log records are
appended as JSON lines to that file, which the agent tails.

Log records are batched: each is packed when it is logged and kept in a small in-process
buffer that goes out as one datagram when it reaches ``batch_bytes`` or, from a background
thread, every ``batch_interval`` seconds (and at exit). Linux queues only
``net.unix.max_dgram_qlen`` datagrams (10 by default) per receiving socket, so one datagram
per record loses records in every burst the agent does not read within a millisecond or two;
dozens of records per datagram do not, and cost the app one system call per batch instead of
one per record. ``batch_interval=0`` sends every record at once.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import socket
import threading
import weakref
from typing import Any

from agent.sdk import protocol

DEFAULT_BATCH_INTERVAL = 0.1  # seconds a log record may wait in the app before it is sent
DEFAULT_BATCH_BYTES = 32 * 1024


class AgentClient:
    """Non-blocking sender of log records and metrics to the local agent."""

    def __init__(
        self,
        socket_path: str | None = None,
        fallback_path: str | None = None,
        max_message_bytes: int = protocol.MAX_MESSAGE_BYTES,
        batch_interval: float = DEFAULT_BATCH_INTERVAL,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
    ) -> None:
        if batch_interval < 0:
            raise ValueError(f"batch_interval must be >= 0 seconds, got {batch_interval}")
        self.socket_path = socket_path or protocol.default_socket_path()
        self.fallback_path = fallback_path
        self.max_message_bytes = max_message_bytes
        self.batch_interval = batch_interval
        self.batch_bytes = max(1, min(batch_bytes, max_message_bytes - 16))
        self.sent = 0
        self.dropped = 0
        self.truncated = 0
        self.fallback_written = 0
        # _send_lock orders whole take-and-send steps (records leave in the order they were
        # buffered); _lock guards the buffer and the counters. Always _send_lock first.
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._batch: list[bytes] = []
        self._records: list[dict[str, Any]] = []  # kept only for the fallback file
        self._batch_size = 0
        self._closed = threading.Event()
        self._flusher: threading.Thread | None = None
        _clients.add(self)
        self._start_flusher()

    def send_log(self, record: dict[str, Any]) -> bool:
        """Queue one logs-batch record for the agent (or send it at once with batch_interval=0).

        Returns False when it was dropped or written to the fallback file; a record that waits
        in the batch counts as accepted, and is counted as dropped later if its batch fails.
        """
        data = protocol.pack(record)
        if len(data) > self.batch_bytes:
            shrunk = self._shrink(record)
            if shrunk is None:
                return self._failed([record], 1)
            data = shrunk
        if self.batch_interval == 0 or self._flusher is None or self._closed.is_set():
            with self._send_lock:  # at once: after close() this fails and is counted
                return self._send_batch([data], [record])
        with self._lock:
            if self._batch_size + len(data) <= self.batch_bytes:
                self._append(data, record)
                return True
        with self._send_lock:  # the batch is full: send it first, then start the next one
            with self._lock:
                batch, records = self._take()
            if batch:
                self._send_batch(batch, records)
            with self._lock:
                self._append(data, record)
        return True

    def flush(self) -> bool:
        """Send the buffered log records now; return False if they were dropped or fell back."""
        with self._send_lock:
            with self._lock:
                batch, records = self._take()
            return self._send_batch(batch, records) if batch else True

    def _append(self, data: bytes, record: dict[str, Any]) -> None:
        self._batch.append(data)
        self._batch_size += len(data)
        if self.fallback_path:
            self._records.append(record)

    def _take(self) -> tuple[list[bytes], list[dict[str, Any]]]:
        batch, records = self._batch, self._records
        self._batch, self._records, self._batch_size = [], [], 0
        return batch, records

    def _send_batch(self, batch: list[bytes], records: list[dict[str, Any]]) -> bool:
        if self._send(protocol.pack_logs(batch), count=len(batch)):
            return True
        return self._failed(records, count=len(batch))

    def _start_flusher(self) -> None:
        """Start the thread that sends partial batches (at creation, never inside a log call).

        Without it (batch_interval=0, or threads cannot start, as during interpreter
        shutdown) every record is sent at once.
        """
        self._flusher = None
        if self.batch_interval == 0 or self._closed.is_set():
            return
        thread = threading.Thread(
            target=_flush_loop,
            args=(weakref.ref(self), self._closed, self.batch_interval),
            name="fleetwatch-sdk-logs",
            daemon=True,
        )
        try:
            thread.start()
        except RuntimeError:  # "can't create new thread at interpreter shutdown"
            return
        self._flusher = thread

    def send_metrics(self, series: list[dict[str, Any]], chunk: int = 200) -> bool:
        """Send metric series, split into messages that fit; return False if any was dropped."""
        ok = True
        for start in range(0, len(series), chunk):
            data = protocol.pack({"t": protocol.METRICS, "series": series[start : start + chunk]})
            if not self._send(data):
                self._count_drop()
                ok = False
        return ok

    def stats(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "dropped": self.dropped,
            "truncated": self.truncated,
            "fallback_written": self.fallback_written,
        }

    def close(self) -> None:
        """Send what is buffered, stop the flusher thread and close the socket."""
        with self._send_lock:
            with self._lock:
                batch, records = self._take()
            if batch:
                self._send_batch(batch, records)
            self._closed.set()
            self._sock.close()

    def _send(self, data: bytes, count: int = 1) -> bool:
        try:
            self._sock.sendto(data, self.socket_path)
        except OSError:  # agent down (ENOENT, ECONNREFUSED), busy (EAGAIN), too large (EMSGSIZE)
            return False
        with self._lock:
            self.sent += count
        return True

    def _after_fork_in_child(self) -> None:
        """A forked child starts with an empty buffer (the parent sends its own), its own
        locks (another thread may have held the parent's at the fork) and its own flusher."""
        closed = self._closed.is_set()
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        if closed:
            self._closed.set()
        self._batch, self._records, self._batch_size = [], [], 0
        self._start_flusher()

    def _shrink(self, record: dict[str, Any]) -> bytes | None:
        """Cut the message and attributes of an oversized record so it fits one datagram."""
        with self._lock:
            self.truncated += 1
        smaller = dict(record)
        budget = self.batch_bytes // 2
        smaller["message"] = str(record.get("message", ""))[:budget]
        attrs = record.get("attrs")
        if attrs:
            smaller["attrs"] = {"truncated_attrs": json.dumps(attrs, default=str)[: budget // 2]}
        smaller.setdefault("attrs", {})["truncated"] = True
        data = protocol.pack(smaller)
        return data if len(data) <= self.batch_bytes else None

    def _failed(self, records: list[dict[str, Any]], count: int) -> bool:
        """Write the ``count`` records of a failed send to the fallback file, or count them dropped.

        ``records`` are kept only when there is a fallback file (``_records`` is empty otherwise).
        """
        if self.fallback_path and self._write_fallback(records):
            return False
        self._count_drop(count)
        return False

    def _count_drop(self, count: int = 1) -> None:
        with self._lock:
            self.dropped += count

    def _write_fallback(self, records: list[dict[str, Any]]) -> bool:
        text = "".join(json.dumps(r, default=str, ensure_ascii=False) + "\n" for r in records)
        try:
            with self._lock, open(self.fallback_path, "a", encoding="utf-8") as handle:  # type: ignore[arg-type]
                handle.write(text)
                self.fallback_written += len(records)
        except OSError:
            return False
        return True


_clients: weakref.WeakSet[AgentClient] = weakref.WeakSet()


def _flush_loop(ref: weakref.ref[AgentClient], closed: threading.Event, interval: float) -> None:
    """Send each client's partial batch every interval; ends with the client (a weak reference,
    so a client dropped without close() is freed) or when it is closed."""
    while not closed.wait(interval):
        client = ref()
        if client is None:
            return
        if client._batch:
            with contextlib.suppress(Exception):
                client.flush()
        del client


def _flush_all() -> None:
    for client in list(_clients):
        with contextlib.suppress(Exception):  # at exit: never raise from logging
            client.flush()


def _reset_after_fork() -> None:
    for client in list(_clients):
        client._after_fork_in_child()


atexit.register(_flush_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
