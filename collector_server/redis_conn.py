"""One Redis client per URL for the server and the workers.

The streams may live on a Redis Cluster (STREAM_REDIS_CLUSTER=true, STREAM_REDIS_URL naming
one of its nodes): ``get_stream_redis`` then returns a redis-py ``RedisCluster`` that routes
each key to its master. The RQ queues always stay on REDIS_URL (a plain Redis).
"""

from __future__ import annotations

from functools import lru_cache

import redis
from django.conf import settings
from redis.backoff import ExponentialBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from shared import streams


@lru_cache(maxsize=8)
def _client(url: str, socket_timeout: float) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=socket_timeout, socket_connect_timeout=5)


@lru_cache(maxsize=4)
def _cluster(url: str, socket_timeout: float) -> RedisCluster:
    return cluster_client(url, socket_timeout=socket_timeout, connect_timeout=5)


def cluster_client(url: str, socket_timeout: float, connect_timeout: float) -> RedisCluster:
    """A RedisCluster client from the URL of any one node (it discovers the others)."""
    return RedisCluster.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.1), 3),
        require_full_coverage=False,  # a master down stops only its own slots (its shards)
    )


def get_redis() -> redis.Redis:
    """Return the shared client for settings.REDIS_URL (bytes responses)."""
    return _client(settings.REDIS_URL, settings.REDIS_SOCKET_TIMEOUT)


def stream_redis_url() -> str:
    return settings.STREAM_REDIS_URL or settings.REDIS_URL


def stream_cluster() -> bool:
    return bool(getattr(settings, "STREAM_REDIS_CLUSTER", False))


def stream_shards() -> int:
    return int(getattr(settings, "STREAM_SHARDS", 1))


def get_stream_redis() -> redis.Redis:
    """Return the client of the Redis holding the streams, the pipeline counters and the agents' user."""
    if stream_cluster():
        return _cluster(stream_redis_url(), settings.REDIS_SOCKET_TIMEOUT)  # type: ignore[return-value]
    return _client(stream_redis_url(), settings.REDIS_SOCKET_TIMEOUT)


def is_cluster(client: object) -> bool:
    return isinstance(client, RedisCluster)


def stream_keys(kind: str) -> list[str]:
    """Every stream key the workers read for `kind` (settings.STREAM_SHARDS shards)."""
    return streams.shard_keys(kind, stream_shards())


def producer_key(kind: str, agent_id: str) -> str:
    """The stream key a batch of `agent_id` goes to (the server's own producers: remote write, OTLP)."""
    return streams.producer_key(kind, agent_id, stream_shards())
