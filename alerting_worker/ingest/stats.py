"""Pipeline counters kept in one Redis hash (see docs/contracts.md)."""

from __future__ import annotations

from collections import Counter

from redis import Redis
from redis.client import Pipeline

from shared import streams


def add(pipe: Pipeline | Redis, counts: Counter[str] | dict[str, int]) -> None:
    """Queue HINCRBY for every non-zero counter."""
    key = streams.stats_key()
    for name, value in counts.items():
        if value:
            pipe.hincrby(key, name, int(value))


def read(client: Redis) -> dict[str, int]:
    raw = client.hgetall(streams.stats_key())
    return {k.decode(): int(v) for k, v in raw.items()}
