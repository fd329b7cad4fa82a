"""Partitions ahead, retention, and trimming of acknowledged stream entries."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection

from alerting_worker.ingest import rollup_marks
from alerting_worker.ingest.failures import REDIS_OUTAGES
from collector_server.monitoring import partitions
from collector_server.prometheus_api.promql import results_cache
from collector_server.redis_conn import get_redis, get_stream_redis, is_cluster, stream_keys
from shared import streams

log = logging.getLogger(__name__)


def create_partitions() -> list[str]:
    """Create the partitions of every registered table for the days ahead."""
    return partitions.ensure_ahead()


def enforce_retention() -> dict[str, object]:
    """Drop expired partitions and forget batch identities older than raw retention."""
    dropped = partitions.enforce_retention()
    if dropped and not results_cache.bump_generation():
        # Cached PromQL blocks may hold the dropped days: a late mark at now (nothing to re-roll)
        # makes the next 5-minute rollup run bump the generation instead.
        rollup_marks.mark_late(get_redis(), datetime.now(UTC).timestamp(), "5m")
    cutoff = datetime.now(UTC) - timedelta(days=settings.RAW_RETENTION_DAYS + 1)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM monitoring_ingestedbatch WHERE received_at < %s", [cutoff])
        forgotten = cursor.rowcount
    return {"dropped_partitions": dropped, "forgotten_batch_ids": forgotten}


def trim_streams() -> dict[str, int]:
    """Remove entries every consumer has acknowledged; unread or pending entries are never trimmed.

    Because nothing unread is ever trimmed, the streams never drop data: when workers
    fall behind, Redis fills, XADD fails (noeviction) and agents spool to disk.
    """
    client = get_stream_redis()
    trimmed = {}
    for kind in (streams.METRICS, streams.LOGS):
        trimmed[kind] = sum(_trim_shard(client, key) for key in stream_keys(kind))
    trimmed[streams.DEAD_LETTER] = trim_dead_letters(client, settings.DEADLETTER_MAXLEN)
    return trimmed


def _trim_shard(client, key: str, trim=None) -> int:
    """Trim one shard; on a Redis Cluster a master that is down skips only its shards this time."""
    try:
        return trim(key) if trim else trim_acknowledged(client, key)
    except REDIS_OUTAGES:
        if not is_cluster(client):
            raise
        log.warning("stream shard %s not trimmed: its master is unavailable", key)
        return 0


def trim_dead_letters(client, keep: int) -> int:
    """Keep the newest `keep` dead letters (they hold whole batches); count what is removed.

    With stream shards each shard has its dead-letter stream; each keeps `keep`.
    """
    removed = sum(
        _trim_shard(client, key, lambda key: int(client.xtrim(key, maxlen=keep, approximate=False)))
        for key in stream_keys(streams.DEAD_LETTER)
    )
    if removed:
        client.hincrby(streams.stats_key(), "deadletters_trimmed", removed)
        log.warning("trimmed %d old dead letters (DEADLETTER_MAXLEN=%d)", removed, keep)
    return removed


def trim_acknowledged(client, key: str) -> int:
    if not client.exists(key):
        return 0
    groups = client.xinfo_groups(key)
    if not groups:
        return 0
    safe: list[bytes] = []
    for group in groups:
        pending = client.xpending(key, group["name"])
        if pending["pending"]:
            safe.append(_as_bytes(pending["min"]))
        else:
            safe.append(_next_id(_as_bytes(group["last-delivered-id"])))
    floor = min(safe, key=_id_tuple)
    return int(client.xtrim(key, minid=floor, approximate=False))


def _as_bytes(value) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _id_tuple(entry_id: bytes) -> tuple[int, int]:
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq or 0)


def _next_id(entry_id: bytes) -> bytes:
    ms, seq = _id_tuple(entry_id)
    return f"{ms}-{seq + 1}".encode()
