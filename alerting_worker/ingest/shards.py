"""Drain every shard of a stream kind, fairly, through the consumer group.

With STREAM_SHARDS=N the workers read N keys per kind (``<prefix>:stream:metrics:{0}`` ...
``{N-1}``, plus the unsharded key that agents without shard settings still write to). Each
shard has its own ``StreamConsumer``: pending recovery (own entries, then reclaiming a dead
consumer's), dead letters and the XACK are per shard. New entries are read round-robin,
one chunk per shard per round, starting at another shard each drain, so a busy shard never
starves the others. On a Redis Cluster one XREADGROUP cannot name keys of several slots,
so a drain that waits for entries polls the shards instead of blocking on one.

On a Redis Cluster a master that is down takes only its shards out: the drain logs it, skips
them until the next drain (their entries stay there, unread or pending) and goes on with the
others; only when every shard is unreachable does the outage propagate.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable

from alerting_worker.ingest.consumer import DrainResult, StreamConsumer, is_cluster, live_default_node
from alerting_worker.ingest.failures import REDIS_OUTAGES

log = logging.getLogger(__name__)

POLL_SECONDS = 0.05
_rotation = itertools.count()


class ShardedDrain:
    """Drain the shards of one kind: ``consumers`` holds one StreamConsumer per shard key."""

    def __init__(self, consumers: list[StreamConsumer], sleep: Callable[[float], None] = time.sleep) -> None:
        if not consumers:
            raise ValueError("no stream shard to drain")
        self.consumers = consumers
        self.sleep = sleep
        self.unavailable: list[str] = []

    def drain(self, max_seconds: float = 20.0, stop_when_empty: bool = True) -> DrainResult:
        if len(self.consumers) == 1:
            return self.consumers[0].drain(max_seconds=max_seconds, stop_when_empty=stop_when_empty)
        result = DrainResult()
        start = next(_rotation) % len(self.consumers)
        order = self.consumers[start:] + self.consumers[:start]
        # Pending entries of every shard first (own, then a dead consumer's): oldest work first.
        order = [consumer for consumer in order if self._step(consumer, consumer.recover, result) is not None]
        deadline = time.monotonic() + max_seconds
        while order and time.monotonic() < deadline:
            read = 0
            for consumer in list(order):
                got = self._step(consumer, consumer.read_chunk, result)
                if got is None:
                    order.remove(consumer)
                read += got or 0
                if time.monotonic() >= deadline:
                    break
            if not read:
                if stop_when_empty:
                    break
                self.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
        return result

    def _step(self, consumer: StreamConsumer, step: Callable[[DrainResult], object], result: DrainResult):
        """Run one step of a shard; None when its master is down (a cluster: the others go on)."""
        try:
            return step(result) or 0
        except REDIS_OUTAGES as exc:
            if not is_cluster(consumer.client):
                raise
            live_default_node(consumer.client)  # type: ignore[arg-type]
            self.unavailable.append(consumer.key)
            result.counts["shards_unavailable"] += 1
            log.warning(
                "stream shard %s is unavailable (%s: %s); the other shards go on",
                consumer.key,
                type(exc).__name__,
                exc,
            )
            if len(self.unavailable) == len(self.consumers):
                raise
            return None
