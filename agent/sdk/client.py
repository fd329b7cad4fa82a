"""AgentClient: send messages to the agent's Unix datagram socket without ever blocking.

A datagram socket in non-blocking mode either queues the whole message at once or fails at
once: ENOENT/ECONNREFUSED when the agent is not running, EAGAIN when its buffer is full.
Every failure is counted (``dropped``) or, when ``fallback_path`` is set, log records are
appended as JSON lines to that file, which the agent tails.
"""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

from agent.sdk import protocol


class AgentClient:
    """Non-blocking sender of log records and metrics to the local agent."""

    def __init__(
        self,
        socket_path: str | None = None,
        fallback_path: str | None = None,
        max_message_bytes: int = protocol.MAX_MESSAGE_BYTES,
    ) -> None:
        self.socket_path = socket_path or protocol.default_socket_path()
        self.fallback_path = fallback_path
        self.max_message_bytes = max_message_bytes
        self.sent = 0
        self.dropped = 0
        self.truncated = 0
        self.fallback_written = 0
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)

    def send_log(self, record: dict[str, Any]) -> bool:
        """Send one logs-batch record; return False when it was dropped or written to the fallback."""
        data = protocol.pack({"t": protocol.LOG, "r": record})
        if len(data) > self.max_message_bytes:
            data = self._shrink(record)
            if data is None:
                return self._failed(record)
        if self._send(data):
            return True
        return self._failed(record)

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
        self._sock.close()

    def _send(self, data: bytes) -> bool:
        try:
            self._sock.sendto(data, self.socket_path)
        except OSError:  # agent down (ENOENT, ECONNREFUSED), busy (EAGAIN), too large (EMSGSIZE)
            return False
        with self._lock:
            self.sent += 1
        return True

    def _shrink(self, record: dict[str, Any]) -> bytes | None:
        """Cut the message and attributes of an oversized record so it fits one datagram."""
        with self._lock:
            self.truncated += 1
        smaller = dict(record)
        budget = self.max_message_bytes // 2
        smaller["message"] = str(record.get("message", ""))[:budget]
        attrs = record.get("attrs")
        if attrs:
            smaller["attrs"] = {"truncated_attrs": json.dumps(attrs, default=str)[: budget // 2]}
        smaller.setdefault("attrs", {})["truncated"] = True
        data = protocol.pack({"t": protocol.LOG, "r": smaller})
        return data if len(data) <= self.max_message_bytes else None

    def _failed(self, record: dict[str, Any]) -> bool:
        if self.fallback_path and self._write_fallback(record):
            return False
        self._count_drop()
        return False

    def _count_drop(self) -> None:
        with self._lock:
            self.dropped += 1

    def _write_fallback(self, record: dict[str, Any]) -> bool:
        line = json.dumps(record, default=str, ensure_ascii=False) + "\n"
        try:
            with self._lock, open(self.fallback_path, "a", encoding="utf-8") as handle:  # type: ignore[arg-type]
                handle.write(line)
                self.fallback_written += 1
        except OSError:
            return False
        return True
