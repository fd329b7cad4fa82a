"""Check the Redis settings the pipeline depends on."""

from __future__ import annotations

from redis import Redis
from redis.exceptions import ResponseError


def check_redis(client: Redis, socket_timeout: float, block_ms: int) -> list[str]:
    """Return a list of problems (empty when Redis is set up as the pipeline needs)."""
    problems = []
    try:
        policy = client.config_get("maxmemory-policy").get("maxmemory-policy")
    except ResponseError:
        policy = None  # CONFIG is disabled on some managed services: cannot tell
    if policy is not None and policy != "noeviction":
        problems.append(
            f"Redis maxmemory-policy is {policy!r}: it must be 'noeviction', or Redis may evict "
            "unread stream entries and queued jobs (set it in redis.conf or with CONFIG SET)"
        )
    if socket_timeout * 1000 <= block_ms:
        problems.append(
            f"REDIS_SOCKET_TIMEOUT={socket_timeout}s must exceed INGEST_BLOCK_MS={block_ms}ms, "
            "or every blocking stream read times out"
        )
    return problems
