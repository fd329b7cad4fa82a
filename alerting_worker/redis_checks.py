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


VOLATILE_OPT_OUT = "FLEETWATCH_ALLOW_VOLATILE_REDIS"


def persistence_settings(client: Redis) -> dict[str, str] | None:
    """Return Redis's appendonly and save settings, or None when CONFIG GET is not allowed."""
    try:
        raw = client.config_get("appendonly") | client.config_get("save")
    except ResponseError:
        return None
    return {_text(k): _text(v) for k, v in raw.items()}


def durability_problem(config: dict[str, str] | None) -> str | None:
    """Say how a Redis with these settings loses un-ingested batches on a restart (None: it keeps them)."""
    if config is None or config.get("appendonly") == "yes":
        return None
    save = config.get("save", "")
    if not save.strip():
        return (
            "Redis keeps no persistence (appendonly 'no', save ''): a restart loses every batch not yet "
            "ingested; set appendonly yes (appendfsync everysec)"
        )
    return (
        f"Redis appendonly is 'no' (save {save!r}): a restart loses the batches written since the last "
        "snapshot; set appendonly yes (appendfsync everysec)"
    )


def check_durability(client: Redis, allow_volatile: bool = False) -> list[str]:
    """Return the durability warnings (empty when Redis keeps an append-only file or the rig opted out)."""
    if allow_volatile:
        return []
    problem = durability_problem(persistence_settings(client))
    return [f"{problem} ({VOLATILE_OPT_OUT}=true silences this on a test rig)"] if problem else []


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
