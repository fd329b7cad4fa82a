"""Remember the oldest late sample stored, so the next rollup run recomputes from there.

Rollups normally recompute the last few minutes. Samples replayed from an agent's spool
after an outage, or stored after an ingest backlog, are older than that; the ingest job
records the oldest such timestamp (an atomic minimum in Redis) and the rollup job starts
from it.
"""

from __future__ import annotations

from redis import Redis

from collector_server.prometheus_api.promql import results_cache
from shared import streams

LATE_AFTER_SECONDS = 240  # inside the rollups' own 5-minute overlap: no mark needed
_MEMBER = "oldest"


def _key(level: str) -> str:
    return f"{streams.prefix()}:rollup:{level}:late-from"


def mark_late(client: Redis, oldest: float, level: str = "1m") -> None:
    """Lower the mark of `level` to `oldest` (seconds since 1970) if older than the current mark.

    Also bumps the PromQL results cache's generation: samples older than the rollups'
    watermark change answers that cache may hold (promql/results_cache.py).
    """
    pipe = client.pipeline(transaction=False)
    pipe.zadd(_key(level), {_MEMBER: oldest}, lt=True)
    pipe.set(results_cache.generation_key(), results_cache.new_generation())
    pipe.execute()


def take_late(client: Redis, level: str = "1m") -> float | None:
    """Return and clear the mark; None when nothing late was stored since the last take."""
    pipe = client.pipeline(transaction=True)
    pipe.zscore(_key(level), _MEMBER)
    pipe.delete(_key(level))
    score, _ = pipe.execute()
    return None if score is None else float(score)
