"""What the workers refused per host because it went over a per-host limit, kept in Redis.

One hash per host (``{prefix}:limits:host:<agent id>``: reason -> count, plus its host name
and when it last happened) and a set of the hosts that have one. Written by the ingest
worker with the chunk's XACK; read by /metrics, the hosts API and the host's admin page.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from redis import Redis
from redis.client import Pipeline

from shared import streams

NEW_SERIES_PER_HOUR = "new_series_per_hour"
SERIES_PER_HOST = "series_per_host"
LABELS_PER_SERIES = "labels_per_series"
LABEL_NAME_LENGTH = "label_name_length"
LABEL_VALUE_LENGTH = "label_value_length"
LOG_ATTRS_BYTES = "log_attrs_bytes"
BATCH_BYTES = "batch_bytes"
REASONS = (
    NEW_SERIES_PER_HOUR,
    SERIES_PER_HOST,
    LABELS_PER_SERIES,
    LABEL_NAME_LENGTH,
    LABEL_VALUE_LENGTH,
    LOG_ATTRS_BYTES,
    BATCH_BYTES,
)
# What one refusal is, per reason: a series (its samples are not stored), a log record, a batch.
UNITS = {
    NEW_SERIES_PER_HOUR: "series",
    SERIES_PER_HOST: "series",
    LABELS_PER_SERIES: "series",
    LABEL_NAME_LENGTH: "series",
    LABEL_VALUE_LENGTH: "series",
    LOG_ATTRS_BYTES: "log record",
    BATCH_BYTES: "batch",
}
HOSTNAME_FIELD = "_hostname"
LAST_FIELD = "_last_at"
STATS_PREFIX = "limit_refused_"

# (agent id of the host, host name) -> reason -> count
Refusals = dict[tuple[str, str], Counter[str]]


@dataclass(frozen=True, slots=True)
class HostRefusals:
    agent_id: str
    hostname: str
    counts: dict[str, int]
    last_at: float | None


def hosts_key(key_prefix: str | None = None) -> str:
    return f"{key_prefix if key_prefix is not None else streams.prefix()}:limits:hosts"


def host_key(agent_id: str, key_prefix: str | None = None) -> str:
    return f"{key_prefix if key_prefix is not None else streams.prefix()}:limits:host:{agent_id}"


def add(pipe: Pipeline, refusals: Refusals, now: float | None = None) -> None:
    """Queue the counters of `refusals` (per host and the totals in the stats hash) on `pipe`."""
    now = time.time() if now is None else now
    totals: Counter[str] = Counter()
    for (agent_id, hostname), counts in refusals.items():
        key = host_key(agent_id)
        for reason, count in counts.items():
            if count:
                pipe.hincrby(key, reason, count)
                totals[reason] += count
        pipe.hset(key, mapping={HOSTNAME_FIELD: hostname, LAST_FIELD: repr(now)})
        pipe.sadd(hosts_key(), agent_id)
    for reason, count in totals.items():
        pipe.hincrby(streams.stats_key(), STATS_PREFIX + reason, count)


def read(client: Redis, agent_id: str) -> HostRefusals | None:
    """Return what was refused from the host of `agent_id`, or None if nothing was."""
    return _parse(agent_id, client.hgetall(host_key(agent_id)))


def read_many(client: Redis, agent_ids: list[str]) -> dict[str, HostRefusals]:
    """Return the refusals of those of `agent_ids` that have any."""
    pipe = client.pipeline(transaction=False)
    for agent_id in agent_ids:
        pipe.hgetall(host_key(agent_id))
    found = {agent_id: _parse(agent_id, raw) for agent_id, raw in zip(agent_ids, pipe.execute(), strict=True)}
    return {agent_id: value for agent_id, value in found.items() if value is not None}


def read_all(client: Redis) -> list[HostRefusals]:
    agent_ids = sorted(_text(member) for member in client.smembers(hosts_key()))
    return list(read_many(client, agent_ids).values())


def _parse(agent_id: str, raw: dict[bytes, bytes]) -> HostRefusals | None:
    if not raw:
        return None
    fields = {_text(k): _text(v) for k, v in raw.items()}
    counts = {reason: int(fields[reason]) for reason in REASONS if reason in fields}
    last = fields.get(LAST_FIELD)
    return HostRefusals(agent_id, fields.get(HOSTNAME_FIELD, ""), counts, float(last) if last else None)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
