"""One Redis client per URL for the server and the workers."""

from __future__ import annotations

from functools import lru_cache

import redis
from django.conf import settings


@lru_cache(maxsize=8)
def _client(url: str, socket_timeout: float) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=socket_timeout, socket_connect_timeout=5)


def get_redis() -> redis.Redis:
    """Return the shared client for settings.REDIS_URL (bytes responses)."""
    return _client(settings.REDIS_URL, settings.REDIS_SOCKET_TIMEOUT)


def stream_redis_url() -> str:
    return settings.STREAM_REDIS_URL or settings.REDIS_URL


def get_stream_redis() -> redis.Redis:
    """Return the client of the Redis holding the streams, the pipeline counters and the agents' user."""
    return _client(stream_redis_url(), settings.REDIS_SOCKET_TIMEOUT)
