"""LocalEndpoint: the agent's Unix datagram socket that applications send logs and metrics to.

Why datagrams: each message arrives whole or not at all, so there is no framing to get wrong
and no half-written message when an app dies; the sender needs no connection, so an app
survives agent restarts without reconnect logic; and a non-blocking ``sendto`` fails at once
(ENOENT when the agent is down, EAGAIN when its buffer is full), which is exactly the "drop
and count, never block" behaviour the SDK needs. Unix datagrams are reliable and ordered on
Linux (unlike UDP); the cost is a size limit per message, which the SDK respects.

Why two threads: Linux queues at most ``net.unix.max_dgram_qlen`` datagrams per receiving
socket (10 by default, whatever SO_RCVBUF says); beyond that a non-blocking sender gets EAGAIN
and the SDK drops and counts the record. So the receiving thread does nothing but ``recv`` into
an in-process queue (a few microseconds each, bounded by MAX_PENDING_BYTES, overflow counted), and a
second thread decodes and checks. The agent also shortens the interpreter's switch interval
(LogShipper.start) so the receiving thread gets the GIL back within a millisecond.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import os
import socket
import stat
import threading
from collections.abc import Callable
from typing import Any

from agent.sdk import protocol
from shared.config import ConfigError
from shared.jsonlog import normalise_level
from shared.wire import LABEL_NAME_RE, METRIC_NAME_RE, METRIC_TYPES

log = logging.getLogger(__name__)
RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024
RECV_TIMEOUT = 0.2
# Bytes received and not yet decoded; beyond it datagrams are dropped and counted ("overflow",
# reported as agent_logs_dropped_total{source="socket"}). About 2,000 full SDK batches.
MAX_PENDING_BYTES = 64 * 1024 * 1024
_RECORD_KEYS = frozenset(
    {
        "ts",
        "level",
        "message",
        "logger",
        "service",
        "module",
        "function",
        "line",
        "thread",
        "process",
        "request_id",
        "trace_id",
        "span_id",
        "attrs",
    }
)


class MessageError(ValueError):
    """A message from an application cannot be used; the text says why."""


def check_log(record: Any) -> dict[str, Any]:
    """Return a log record in the logs-batch shape, or raise MessageError naming the problem."""
    if not isinstance(record, dict):
        raise MessageError("log record must be a map")
    ts = record.get("ts")
    if not isinstance(ts, int | float) or isinstance(ts, bool) or not math.isfinite(ts):
        raise MessageError("log record 'ts' must be seconds since 1970")
    if not isinstance(record.get("message"), str):
        raise MessageError("log record 'message' must be a string")
    out = {k: v for k, v in record.items() if k in _RECORD_KEYS}
    out["level"] = normalise_level(record.get("level"))
    extra = {k: v for k, v in record.items() if k not in _RECORD_KEYS}
    if extra or "attrs" in out:
        attrs = out.get("attrs") if isinstance(out.get("attrs"), dict) else {}
        out["attrs"] = {**attrs, **extra}
    return out


def _string_keys(value: Any, depth: int) -> Any:
    """Return ``value`` with every map key as text (a Python app may log {200: 5}); the logs
    batch, like JSON, takes string keys only. Maps nested deeper than 32 are cut."""
    if isinstance(value, dict):
        if depth > 32:
            return "[too deep]"
        return {(k if type(k) is str else str(k)): _string_keys(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_string_keys(v, depth + 1) for v in value]
    return value


def check_series(series: Any) -> dict[str, Any]:
    """Return one metric series from an app, or raise MessageError naming the problem."""
    if not isinstance(series, dict):
        raise MessageError("series must be a map")
    name = series.get("name")
    if not isinstance(name, str) or not METRIC_NAME_RE.match(name):
        raise MessageError(f"series name {name!r} is not a valid metric name")
    mtype = series.get("type", "gauge")
    if mtype not in METRIC_TYPES:
        raise MessageError(f"series {name}: type {mtype!r} must be 'gauge' or 'counter'")
    labels = series.get("labels") or {}
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and LABEL_NAME_RE.match(k) for k, v in labels.items()
    ):
        raise MessageError(f"series {name}: labels must map label names to strings")
    points = series.get("points")
    if not isinstance(points, list) or not points or not all(_is_point(p) for p in points):
        raise MessageError(f"series {name}: points must be a non-empty list of [timestamp, value]")
    # The worker adds the agent's host; an app's own "host" label would clash with it.
    clean = {k: v for k, v in labels.items() if k != "host"}
    return {"name": name, "type": mtype, "labels": clean, "points": [[float(t), float(v)] for t, v in points]}


def _is_point(point: Any) -> bool:
    return (
        isinstance(point, list | tuple)
        and len(point) == 2
        and all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in point)
    )


def socket_in_use(path: str) -> bool:
    """Return True when a process is bound to the datagram socket at ``path`` (not a stale file)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        probe.connect(path)
    except OSError:  # ECONNREFUSED: nobody is bound; the file is left over from a dead agent
        return False
    finally:
        probe.close()
    return True


class LocalEndpoint:
    """Receive SDK messages on a Unix datagram socket in a background thread."""

    def __init__(
        self,
        path: str,
        on_log: Callable[[dict[str, Any]], None],
        on_series: Callable[[list[dict[str, Any]]], None],
        mode: int = 0o660,
    ) -> None:
        self.path = path
        self.mode = mode
        self.on_log = on_log
        self.on_series = on_series
        self.counters = {"messages": 0, "logs": 0, "series": 0, "rejected": 0, "overflow": 0}
        self.last_rejection = ""
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._handler: threading.Thread | None = None
        self._pending: collections.deque[bytes] = collections.deque()
        self._ready = threading.Condition()
        self._drained = threading.Event()
        # Written by one thread each, so neither needs a lock; pending bytes = in - out.
        self._bytes_in = 0
        self._bytes_out = 0

    def start(self) -> None:
        """Bind the socket (replacing a stale one left by a dead agent) and start receiving."""
        try:
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"logs.socket_path={self.path!r}: cannot create its directory: {exc}") from None
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                if socket_in_use(self.path):
                    raise ConfigError(
                        f"logs.socket_path={self.path!r}: another process (a second agent?) receives on it"
                    )
                os.unlink(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
        try:
            sock.bind(self.path)
            os.chmod(self.path, self.mode)
        except OSError as exc:
            sock.close()
            raise ConfigError(f"logs.socket_path={self.path!r} cannot be bound: {exc}") from None
        sock.settimeout(RECV_TIMEOUT)
        self._sock = sock
        self._stop.clear()
        self._drained.clear()
        self._handler = threading.Thread(
            target=self._handle_pending, name="fleetwatch-log-decode", daemon=True
        )
        self._handler.start()
        self._thread = threading.Thread(target=self._run, name="fleetwatch-log-endpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop receiving and decode everything the kernel accepted before returning.

        The socket file goes first, so a sender from then on gets ENOENT (and counts the drop
        or writes its fallback file) instead of a datagram that nobody would read.
        """
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._sock is not None:
            self._sock.setblocking(False)
            while True:  # what arrived between the last recv and the unlink
                try:
                    self._queue(self._sock.recv(protocol.MAX_MESSAGE_BYTES * 2))
                except OSError:
                    break
        self._drained.set()
        with self._ready:
            self._ready.notify()
        if self._handler is not None:
            self._handler.join(timeout=30)
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _queue(self, data: bytes) -> None:
        if self._bytes_in - self._bytes_out + len(data) > MAX_PENDING_BYTES:
            self.counters["overflow"] += 1
            return
        self._bytes_in += len(data)
        self._pending.append(data)
        if len(self._pending) == 1:
            with self._ready:
                self._ready.notify()

    def _run(self) -> None:
        """Receive datagrams as fast as they come; the decoding thread does the rest."""
        assert self._sock is not None
        sock, size = self._sock, protocol.MAX_MESSAGE_BYTES * 2
        while not self._stop.is_set():
            try:
                data = sock.recv(size)
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            self._queue(data)

    def _handle_pending(self) -> None:
        pending, ready = self._pending, self._ready
        while True:
            while pending:
                data = pending.popleft()
                self.handle(data)
                self._bytes_out += len(data)
            if self._drained.is_set():  # stop() has queued the socket's last datagrams
                if not pending:
                    return
                continue
            with ready:
                if not pending and not self._drained.is_set():
                    ready.wait(RECV_TIMEOUT)

    def handle(self, data: bytes) -> None:
        """Decode one datagram and pass its log record or series on; count what is rejected."""
        self.counters["messages"] += 1
        try:
            try:
                message = protocol.unpack(data)
            except ValueError:  # a map key that is not text ({200: 5}): keep the records, as text keys
                message = _string_keys(protocol.unpack(data, strict_map_key=False), 0)
            if not isinstance(message, dict):
                raise MessageError("message must be a msgpack map")
            kind = message.get("t")
            if kind == protocol.LOGS:
                self._logs(message.get("r"))
            elif kind == protocol.LOG:
                self.on_log(check_log(message.get("r")))
                self.counters["logs"] += 1
            elif kind == protocol.METRICS:
                self._series(message.get("series"))
            else:
                raise MessageError(f"unknown message type {kind!r} (expected 'logs', 'log' or 'metrics')")
        except MessageError as exc:
            self._reject(str(exc))
        except Exception as exc:  # msgpack raises several unrelated types
            self._reject(f"not valid msgpack: {exc.__class__.__name__}")

    def _logs(self, raw: Any) -> None:
        if not isinstance(raw, list):
            raise MessageError("logs message needs an 'r' list of records")
        on_log = self.on_log
        for record in raw:
            try:
                checked = check_log(record)
            except MessageError as exc:
                self._reject(str(exc))
                continue
            on_log(checked)
            self.counters["logs"] += 1

    def _series(self, raw: Any) -> None:
        if not isinstance(raw, list):
            raise MessageError("metrics message needs a 'series' list")
        good = []
        for item in raw:
            try:
                good.append(check_series(item))
            except MessageError as exc:
                self._reject(str(exc))
        if good:
            self.on_series(good)
            self.counters["series"] += len(good)

    def _reject(self, reason: str) -> None:
        self.counters["rejected"] += 1
        if reason != self.last_rejection:
            log.warning("rejected message on %s: %s", self.path, reason)
        self.last_rejection = reason

    def stats(self) -> dict[str, Any]:
        return {**self.counters, "last_rejection": self.last_rejection}
