"""StreamBatcher: buffer items from the local endpoint and send them as batches."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

from agent.logs.config import AgentInfo
from agent.logs.sending import Sender
from shared.wire import encode_batch

log = logging.getLogger(__name__)


class StreamBatcher:
    """Collect log records (kind "logs") or series (kind "metrics") and flush them as batches.

    Batches carry (agent id, epoch, seq) with a fresh epoch per agent run and seq counting up,
    so a batch re-sent by the transport is stored once. When the buffer is full the oldest
    items are dropped and counted in ``dropped``.
    """

    def __init__(
        self, kind: str, agent: AgentInfo, send: Sender, epoch: int, max_items: int, max_buffer: int
    ) -> None:
        self.kind = kind
        self.agent = agent
        self.send = send
        self.epoch = epoch
        self.seq = 0
        self.max_items = max_items
        self.buffer: deque[dict[str, Any]] = deque()
        self.max_buffer = max_buffer
        self.counters = {"items_sent": 0, "batches_sent": 0, "dropped": 0, "send_errors": 0}
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()

    def add(self, items: list[dict[str, Any]]) -> None:
        with self._lock:
            self.buffer.extend(items)
            overflow = len(self.buffer) - self.max_buffer
            for _ in range(max(0, overflow)):
                self.buffer.popleft()
            if overflow > 0:
                self.counters["dropped"] += overflow

    def add_one(self, item: dict[str, Any]) -> None:
        self.add([item])

    def flush(self) -> int:
        """Send everything buffered; on a send failure keep the rest for the next flush."""
        sent = 0
        with self._flush_lock:
            while True:
                with self._lock:
                    chunk = [self.buffer.popleft() for _ in range(min(self.max_items, len(self.buffer)))]
                if not chunk:
                    return sent
                body = {"series": chunk} if self.kind == "metrics" else {"logs": chunk}
                batch = encode_batch(
                    kind=self.kind,
                    agent_id=self.agent.agent_id,
                    host=self.agent.host,
                    agent_version=self.agent.version,
                    epoch=self.epoch,
                    seq=self.seq,
                    sent_at=time.time(),
                    **body,
                )
                try:
                    self.send(batch)
                except Exception as exc:
                    self.counters["send_errors"] += 1
                    log.warning(
                        "sending a %s batch failed, keeping it for the next flush: %s", self.kind, exc
                    )
                    with self._lock:
                        self.buffer.extendleft(reversed(chunk))
                    return sent
                self.seq += 1
                sent += len(chunk)
                self.counters["items_sent"] += len(chunk)
                self.counters["batches_sent"] += 1

    def stats(self) -> dict[str, Any]:
        return {**self.counters, "buffered": len(self.buffer)}
