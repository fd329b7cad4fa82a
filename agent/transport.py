"""Deliver batches to a Redis stream, spooling to disk while Redis cannot take them.

Generic over the stream kind: the metrics loop and the log shipper each own one
``Transport(redis_url, stream_key, spool)`` (``stream_key``: the shard of the agent's id,
``shared.streams.producer_key``; ``cluster``: ``redis_url`` is a node of a Redis Cluster). Order is kept: while anything is spooled,
new batches go behind it and the spool is replayed oldest first. Entries are added
without MAXLEN (the workers trim acknowledged entries); an OOM answer from a full
Redis is treated like an outage, so back-pressure ends in the bounded spool.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from agent.spool import Spool
from shared.signing import Credential, Signer
from shared.streams import PAYLOAD_FIELD

log = logging.getLogger("agent.transport")

SOCKET_TIMEOUT = 2.0
CONNECT_TIMEOUT = 1.0
REPLAY_CHUNK = 100
REPLAY_BUDGET_SECONDS = 2.0


class Transport:
    """Push batches to one stream; keep them in ``spool`` while that fails."""

    def __init__(
        self,
        redis_url: str,
        stream_key: str,
        spool: Spool,
        *,
        socket_timeout: float = SOCKET_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
        replay_budget: float = REPLAY_BUDGET_SECONDS,
        credential: Credential | None = None,
        cluster: bool = False,
    ) -> None:
        self.stream_key = stream_key
        self.spool = spool
        self.replay_budget = replay_budget
        # Signed when sent, not when spooled: a rotated credential also covers the spool.
        self._signer = Signer(credential) if credential else None
        self.batches_sent_total = 0
        self.send_errors_total = 0
        self.reachable = True
        self._lock = threading.Lock()
        # No client-side retries: a failed attempt goes to the spool and the next cycle tries again.
        self._client: redis.Redis | RedisCluster | None
        self._cluster_args = (redis_url, socket_timeout, connect_timeout) if cluster else None
        if cluster:  # made at the first send: a cluster that is down at start is an outage, not a crash
            self._client = None
        else:
            self._client = redis.Redis.from_url(
                redis_url,
                socket_timeout=socket_timeout,
                socket_connect_timeout=connect_timeout,
                retry=Retry(NoBackoff(), 0),
                health_check_interval=0,
            )

    def send(self, batch: bytes) -> bool:
        """Deliver one batch now, or spool it behind older ones; return True if delivered."""
        with self._lock:
            if self.spool.pending_batches == 0:
                if self._push([batch]) == 1:
                    return True
                self.spool.append(batch)
                return False
            self.spool.append(batch)
            self._replay(self.replay_budget)
            return self.spool.pending_batches == 0

    def flush(self, budget: float | None = None) -> bool:
        """Replay spooled batches for up to ``budget`` seconds; return True if none are left."""
        with self._lock:
            self._replay(self.replay_budget if budget is None else budget)
            return self.spool.pending_batches == 0

    def _replay(self, budget: float) -> None:
        deadline = time.monotonic() + budget
        while self.spool.pending_batches and time.monotonic() < deadline:
            chunk = self.spool.peek(REPLAY_CHUNK)
            if not chunk:
                break
            delivered = self._push(chunk)
            self.spool.commit(delivered)
            if delivered < len(chunk):
                break

    def _connected(self) -> redis.Redis | RedisCluster:
        if self._client is None and self._cluster_args is not None:
            url, socket_timeout, connect_timeout = self._cluster_args
            # redis_url names one node; the client learns the slots and follows MOVED answers.
            self._client = RedisCluster.from_url(
                url,
                socket_timeout=socket_timeout,
                socket_connect_timeout=connect_timeout,
                retry=Retry(NoBackoff(), 1),  # one more try after a MOVED or a reconnect
                require_full_coverage=False,
            )
        assert self._client is not None
        return self._client

    def _push(self, batches: list[bytes]) -> int:
        """XADD the batches in one pipeline; return how many leading ones Redis took."""
        try:
            client = self._connected()
        except redis.RedisError as exc:
            self._failed(exc)
            return 0
        pipe = client.pipeline(transaction=False)
        signer = self._signer
        for batch in batches:
            fields = {PAYLOAD_FIELD: batch}
            if signer is not None:
                fields.update(signer.fields(batch))
            pipe.xadd(self.stream_key, fields)
        try:
            results = pipe.execute(raise_on_error=False)
        except redis.RedisError as exc:
            self._failed(exc)
            return 0
        delivered = 0
        for result in results:
            if isinstance(result, Exception):
                self._failed(result)
                break
            delivered += 1
        self.batches_sent_total += delivered
        if delivered == len(batches):
            self._recovered()
        return delivered

    def _failed(self, exc: Exception) -> None:
        self.send_errors_total += 1
        if self.reachable:
            self.reachable = False
            log.warning(
                "cannot write to %s (%s: %s); spooling batches to disk until Redis takes them",
                self.stream_key,
                exc.__class__.__name__,
                exc,
            )

    def _recovered(self) -> None:
        if not self.reachable:
            self.reachable = True
            log.info("Redis takes batches again; %d spooled batches to replay", self.spool.pending_batches)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self.spool.close()
