"""Names of the Redis keys shared by the agent and the workers."""

from __future__ import annotations

import os
import zlib

DEFAULT_PREFIX = "fleetwatch"
METRICS = "metrics"
LOGS = "logs"
DEAD_LETTER = "deadletter"
CONSUMER_GROUP = "ingest"
PAYLOAD_FIELD = b"b"
SHARDS_SETTING = "STREAM_SHARDS"
MAX_SHARDS = 1024
SHARDED_KINDS = (METRICS, LOGS, DEAD_LETTER)


def prefix() -> str:
    return os.environ.get("FLEETWATCH_STREAM_PREFIX", DEFAULT_PREFIX)


def stream_key(kind: str, key_prefix: str | None = None) -> str:
    """Return the unsharded Redis stream key of a kind ("metrics", "logs", "deadletter").

    With STREAM_SHARDS=1 (the default) it is the only key of that kind; with more shards it
    is still read by the workers (agents configured without shards keep being stored).
    """
    return f"{key_prefix if key_prefix is not None else prefix()}:stream:{kind}"


def parse_shards(value: object, name: str = SHARDS_SETTING) -> int:
    """Validate a shard count (an int 1..MAX_SHARDS, or its text); raise ValueError naming `name`."""
    text = str(value).strip() if not isinstance(value, bool) else ""
    if isinstance(value, int) and not isinstance(value, bool):
        count = value
    elif text.isdigit():
        count = int(text)
    else:
        raise ValueError(f"{name}={value!r} is not a whole number of stream shards (1..{MAX_SHARDS})")
    if not 1 <= count <= MAX_SHARDS:
        raise ValueError(f"{name}={count} is out of range: stream shards are 1..{MAX_SHARDS}")
    return count


def shard_count() -> int:
    """The number of stream shards of this process (STREAM_SHARDS, default 1)."""
    return parse_shards(os.environ.get(SHARDS_SETTING, "").strip() or "1")


def shard_of(agent_id: str, shards: int) -> int:
    """The shard of an agent: CRC-32 (zlib/IEEE) of its id's UTF-8 bytes, modulo the shard count.

    Third-party producers must do the same (docs/wire-format.md "Stream shards").
    """
    return zlib.crc32(agent_id.encode("utf-8")) % shards if shards > 1 else 0


def shard_key(kind: str, shard: int, shards: int, key_prefix: str | None = None) -> str:
    """The key of one shard: ``<prefix>:stream:<kind>:{<shard>}`` (the hash tag picks the cluster slot).

    With one shard it is the unsharded key, so existing deployments keep their key names.
    """
    base = stream_key(kind, key_prefix)
    return base if shards <= 1 else f"{base}:{{{shard}}}"


def producer_key(kind: str, agent_id: str, shards: int | None = None, key_prefix: str | None = None) -> str:
    """The stream key a producer with `agent_id` XADDs `kind` batches to."""
    count = shard_count() if shards is None else shards
    return shard_key(kind, shard_of(agent_id, count), count, key_prefix)


def shard_keys(kind: str, shards: int | None = None, key_prefix: str | None = None) -> list[str]:
    """Every key the workers read for `kind`: each shard, then the unsharded key when sharded."""
    count = shard_count() if shards is None else shards
    keys = [shard_key(kind, shard, count, key_prefix) for shard in range(count)]
    if count > 1:
        keys.append(stream_key(kind, key_prefix))
    return keys


def dead_letter_key_for(stream: str, key_prefix: str | None = None) -> str:
    """The dead-letter stream of a shard key: same hash tag, so dead-lettering and XACK share a slot."""
    tag_start = stream.rfind(":{")
    if stream.endswith("}") and tag_start != -1:
        return stream_key(DEAD_LETTER, key_prefix) + stream[tag_start:]
    return stream_key(DEAD_LETTER, key_prefix)


def counter_key(name: str, key_prefix: str | None = None) -> str:
    """Return the hash-free Redis key of a pipeline counter (dead letters, ...)."""
    return f"{key_prefix if key_prefix is not None else prefix()}:counter:{name}"


def stats_key(key_prefix: str | None = None) -> str:
    """Return the Redis hash of pipeline counters (samples_ingested, batches_deadlettered, ...)."""
    return f"{key_prefix if key_prefix is not None else prefix()}:stats"


def enrollments_version_key(key_prefix: str | None = None) -> str:
    """Return the Redis key bumped on every enrollment change (workers drop their cache)."""
    return f"{key_prefix if key_prefix is not None else prefix()}:enrollments:version"
