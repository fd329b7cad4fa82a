"""Names of the Redis keys shared by the agent and the workers."""

from __future__ import annotations

import os

DEFAULT_PREFIX = "fleetwatch"
METRICS = "metrics"
LOGS = "logs"
DEAD_LETTER = "deadletter"
CONSUMER_GROUP = "ingest"
PAYLOAD_FIELD = b"b"


def prefix() -> str:
    return os.environ.get("FLEETWATCH_STREAM_PREFIX", DEFAULT_PREFIX)


def stream_key(kind: str, key_prefix: str | None = None) -> str:
    """Return the Redis stream key for a kind of batch ("metrics", "logs", "deadletter")."""
    return f"{key_prefix if key_prefix is not None else prefix()}:stream:{kind}"


def counter_key(name: str, key_prefix: str | None = None) -> str:
    """Return the hash-free Redis key of a pipeline counter (dead letters, ...)."""
    return f"{key_prefix if key_prefix is not None else prefix()}:counter:{name}"


def stats_key(key_prefix: str | None = None) -> str:
    """Return the Redis hash of pipeline counters (samples_ingested, batches_deadlettered, ...)."""
    return f"{key_prefix if key_prefix is not None else prefix()}:stats"


def enrollments_version_key(key_prefix: str | None = None) -> str:
    """Return the Redis key bumped on every enrollment change (workers drop their cache)."""
    return f"{key_prefix if key_prefix is not None else prefix()}:enrollments:version"
