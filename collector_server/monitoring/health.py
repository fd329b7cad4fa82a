"""Health checks of the pipeline, shared by the health endpoint and the CLI.

Each check returns a `Check` (healthy or not, plus details) and never raises; each talks
to Postgres or Redis with short timeouts so a probe answers within seconds.

Thresholds (settings, with defaults):
  HEALTH_MAX_STREAM_LAG (100000 entries not yet delivered to the ingest group),
  HEALTH_MAX_PENDING_AGE_SECONDS (300: the oldest delivered-but-unacknowledged entry),
  HEALTH_WORKER_HEARTBEAT_SECONDS (480: RQ's default worker_ttl 420 + 60),
  HEALTH_SCHEDULER_HEARTBEAT_SECONDS (120: RQ's cron scheduler TTL).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from rq import Worker
from rq.cron import CronScheduler

from alerting_worker.redis_checks import durability_problem, persistence_settings
from shared import streams

REDIS_TIMEOUT_SECONDS = 2.0
DEFAULTS = {
    "HEALTH_MAX_STREAM_LAG": 100_000,
    "HEALTH_MAX_PENDING_AGE_SECONDS": 300,
    "HEALTH_WORKER_HEARTBEAT_SECONDS": 480,
    "HEALTH_SCHEDULER_HEARTBEAT_SECONDS": 120,
}
REQUIRED_EVICTION_POLICY = "noeviction"
STREAM_KINDS = (streams.METRICS, streams.LOGS)


@dataclass
class Check:
    name: str
    healthy: bool
    details: dict[str, Any] = field(default_factory=dict)
    # Working, but at risk (a Redis that would lose the streams on a restart): status "degraded", 200.
    degraded: bool = False
    duration_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"healthy": self.healthy, **({"degraded": True} if self.degraded else {}), **self.details}


def threshold(name: str) -> int:
    return int(getattr(settings, name, DEFAULTS[name]))


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
    )


def health_redis() -> redis.Redis:
    """Return a Redis client with short timeouts, for probes."""
    return _client(settings.REDIS_URL)


def health_stream_redis() -> redis.Redis:
    """The streams' Redis (STREAM_REDIS_URL, by default the same as REDIS_URL), short timeouts."""
    url = getattr(settings, "STREAM_REDIS_URL", "") or settings.REDIS_URL
    if getattr(settings, "STREAM_REDIS_CLUSTER", False):
        return _cluster_client(url)  # type: ignore[return-value]
    return _client(url)


@lru_cache(maxsize=2)
def _cluster_client(url: str) -> Any:
    from collector_server.redis_conn import cluster_client

    return cluster_client(url, socket_timeout=REDIS_TIMEOUT_SECONDS, connect_timeout=REDIS_TIMEOUT_SECONDS)


def check_database() -> Check:
    """SELECT 1 on the default database."""
    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return Check("database", False, {"error": f"{type(exc).__name__}: {exc}"})
    return Check("database", True, {"latency_ms": round((time.monotonic() - started) * 1000, 2)})


def check_redis(client: redis.Redis) -> Check:
    """PING, and the eviction policy must be noeviction (evicting would drop queued batches).

    A Redis without an append-only file is reported degraded (it would lose the streams on a
    restart) unless FLEETWATCH_ALLOW_VOLATILE_REDIS opts out.
    """
    started = time.monotonic()
    try:
        client.ping()
        latency = round((time.monotonic() - started) * 1000, 2)
        policy = _eviction_policy(client)
        persistence = persistence_settings(client)
    except redis.RedisError as exc:
        return Check("redis", False, {"error": f"{type(exc).__name__}: {exc}"})
    details: dict[str, Any] = {"latency_ms": latency, "maxmemory_policy": policy}
    if persistence is not None:
        details["persistence"] = persistence
    check = Check("redis", True, details)
    if policy is None:
        details["warning"] = "CONFIG GET is not allowed; cannot verify maxmemory-policy or persistence"
    elif policy != REQUIRED_EVICTION_POLICY:
        details["error"] = f"maxmemory-policy is {policy!r}; it must be {REQUIRED_EVICTION_POLICY!r}"
        check.healthy = False
    problem = durability_problem(persistence)
    if problem and not getattr(settings, "ALLOW_VOLATILE_REDIS", False):
        details["warning"] = f"{problem} (or FLEETWATCH_ALLOW_VOLATILE_REDIS=true on a test rig)"
        check.degraded = True
    return check


def _eviction_policy(client: redis.Redis) -> str | None:
    try:
        value = client.config_get("maxmemory-policy").get("maxmemory-policy")
    except redis.ResponseError:
        return None
    return value.decode() if isinstance(value, bytes) else value


def check_workers(client: redis.Redis, now: float | None = None) -> Check:
    """At least one RQ worker registered whose last heartbeat is recent."""
    now = time.time() if now is None else now
    limit = threshold("HEALTH_WORKER_HEARTBEAT_SECONDS")
    try:
        workers = Worker.all(connection=client)
    except redis.RedisError as exc:
        return Check("workers", False, {"error": f"{type(exc).__name__}: {exc}"})
    alive = []
    for worker in workers:
        beat = worker.last_heartbeat
        if beat is not None and now - _epoch(beat) <= limit:
            alive.append(worker.name)
    details: dict[str, Any] = {"registered": len(workers), "alive": len(alive), "names": alive[:20]}
    if not alive:
        details["error"] = f"no RQ worker has sent a heartbeat in the last {limit}s"
    return Check("workers", bool(alive), details)


def check_scheduler(client: redis.Redis, now: float | None = None) -> Check:
    """One live RQ cron scheduler (recent heartbeat in the cron scheduler registry)."""
    now = time.time() if now is None else now
    limit = threshold("HEALTH_SCHEDULER_HEARTBEAT_SECONDS")
    try:
        schedulers = CronScheduler.all(connection=client, cleanup=False)
        beats = {s.name: s.last_heartbeat for s in schedulers}
    except redis.RedisError as exc:
        return Check("scheduler", False, {"error": f"{type(exc).__name__}: {exc}"})
    alive = [name for name, beat in beats.items() if beat is not None and now - _epoch(beat) <= limit]
    details: dict[str, Any] = {"registered": len(beats), "alive": len(alive), "names": alive}
    if not alive:
        details["error"] = f"no cron scheduler has sent a heartbeat in the last {limit}s"
    elif len(alive) > 1:
        details["warning"] = "more than one scheduler is running; run exactly one"
    return Check("scheduler", bool(alive), details)


def stream_state(client: redis.Redis, kind: str, now_ms: int | None = None) -> dict[str, Any]:
    """Return length, lag, pending and oldest pending age of a kind's ingest group.

    With stream shards: the sums (the oldest pending entry of any shard), and ``by_shard``.
    """
    from collector_server.redis_conn import stream_keys

    keys = stream_keys(kind)
    if len(keys) == 1:
        return shard_state(client, keys[0], now_ms)
    shards = {key: shard_state(client, key, now_ms) for key in keys}
    total: dict[str, Any] = {
        "stream": streams.stream_key(kind),
        "shards": len(keys) - 1,  # the last key is the unsharded one, still read
        "exists": any(state["exists"] for state in shards.values()),
        "group": all(state["group"] for state in shards.values() if state["exists"]),
        "oldest_pending_seconds": max(state["oldest_pending_seconds"] for state in shards.values()),
    }
    for name in ("length", "lag", "pending"):
        total[name] = sum(state[name] for state in shards.values())
    total["by_shard"] = {
        key: {name: state[name] for name in ("length", "lag", "pending", "oldest_pending_seconds")}
        for key, state in shards.items()
    }
    return total


def dead_letter_length(client: redis.Redis) -> int:
    """Entries in the dead-letter stream(s): one per shard with stream shards."""
    from collector_server.redis_conn import stream_keys

    return sum(int(client.xlen(key)) for key in stream_keys(streams.DEAD_LETTER))


def shard_state(client: redis.Redis, key: str, now_ms: int | None = None) -> dict[str, Any]:
    """Return length, lag, pending and oldest pending age of one stream key's ingest group."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    state: dict[str, Any] = {"stream": key, "exists": bool(client.exists(key))}
    if not state["exists"]:
        return state | {"length": 0, "lag": 0, "pending": 0, "oldest_pending_seconds": 0.0, "group": False}
    state["length"] = int(client.xlen(key))
    groups = {_text(g["name"]): g for g in client.xinfo_groups(key)}
    group = groups.get(streams.CONSUMER_GROUP)
    if group is None:
        # No worker has created the group yet: everything in the stream is waiting.
        return state | {"lag": state["length"], "pending": 0, "oldest_pending_seconds": 0.0, "group": False}
    lag = group.get("lag")
    state.update(
        group=True, lag=int(lag) if lag is not None else state["length"], pending=int(group["pending"])
    )
    state["oldest_pending_seconds"] = 0.0
    if state["pending"]:
        summary = client.xpending(key, streams.CONSUMER_GROUP)
        oldest = _text(summary.get("min") or "")
        if oldest:
            state["oldest_pending_seconds"] = max(0.0, (now_ms - int(oldest.split("-")[0])) / 1000)
    return state


def check_streams(client: redis.Redis, now_ms: int | None = None) -> Check:
    """Lag and oldest pending entry of the metrics and logs streams stay under the thresholds."""
    max_lag = threshold("HEALTH_MAX_STREAM_LAG")
    max_age = threshold("HEALTH_MAX_PENDING_AGE_SECONDS")
    details: dict[str, Any] = {"max_lag": max_lag, "max_pending_age_seconds": max_age}
    problems = []
    try:
        for kind in STREAM_KINDS:
            state = stream_state(client, kind, now_ms)
            details[kind] = state
            if state["lag"] > max_lag:
                problems.append(f"{kind} stream lag {state['lag']} exceeds {max_lag}")
            if state["oldest_pending_seconds"] > max_age:
                problems.append(
                    f"{kind} stream oldest pending entry is {state['oldest_pending_seconds']:.0f}s old "
                    f"(limit {max_age}s)"
                )
        details["deadletter_length"] = dead_letter_length(client)
    except redis.RedisError as exc:
        return Check("streams", False, details | {"error": f"{type(exc).__name__}: {exc}"})
    if problems:
        details["error"] = "; ".join(problems)
    return Check("streams", not problems, details)


SCOPES = ("pipeline", "server", "live")


def check_process() -> Check:
    """The process answers requests: no Postgres, no Redis, nothing that an outage elsewhere can fail."""
    return Check("process", True, {"pid": os.getpid()})


def run_checks(scope: str = "pipeline") -> list[Check]:
    """Run the checks of `scope`; Redis-based checks are skipped (unhealthy) when Redis is unreachable.

    "live" only proves that the process answers (no database or Redis query): the liveness
    probe uses it, so a Postgres or Redis outage never gets healthy server pods restarted.
    "server" checks only what this server process needs to answer (Postgres, Redis):
    readiness probes use it, so a pipeline fault (a dead worker, a backlog) never takes the API
    out of the load balancer exactly when operators need to look. "pipeline" checks everything.
    """
    if scope == "live":
        return [_timed(check_process)]
    checks = [_timed(check_database)]
    from collector_server import replica

    if replica.configured():  # DATABASE_REPLICA_URL: its lag; degraded when reads fall back
        checks.append(_timed(replica.check))
    client = health_redis()
    redis_check = _timed(check_redis, client)
    checks.append(redis_check)
    if scope == "server":
        return checks
    if "latency_ms" not in redis_check.details:
        for name in ("workers", "scheduler", "streams"):
            checks.append(Check(name, False, {"error": "redis is unreachable"}))
        return checks
    stream_client = health_stream_redis()
    checks.extend(
        [
            _timed(check_workers, client),
            _timed(check_scheduler, client),
            _timed(check_streams, stream_client),
            _timed(check_agent_acl, stream_client),
        ]
    )
    return checks


def check_agent_acl(client: redis.Redis) -> Check:
    """What the workers found at start-up: the agents' Redis user may only XADD to the streams."""
    from shared import redis_acl

    try:
        found = redis_acl.read_check(client)
    except (redis.RedisError, ValueError) as exc:
        return Check("agent_credentials", False, {"error": f"{type(exc).__name__}: {exc}"})
    if found is None:
        return Check("agent_credentials", True, {"warning": "no worker has checked the agent user yet"})
    details = {k: found.get(k) for k in ("user", "exists", "checked_at")}
    if found.get("problems"):
        return Check("agent_credentials", False, details | {"error": "; ".join(found["problems"])})
    if not found.get("checked"):
        details["warning"] = found.get("error") or "the agent user does not exist: agents share REDIS_URL"
    return Check("agent_credentials", True, details)


def _timed(check: Any, *args: Any) -> Check:
    """Run one check and record how long it took (the seed 003 health body reports it)."""
    started = time.perf_counter()
    result = check(*args)
    result.duration_ms = round((time.perf_counter() - started) * 1000.0, 3)
    return result


def report(checks: list[Check]) -> dict[str, Any]:
    """Return the health body: status (healthy, degraded or unhealthy), timestamp, services, failing."""
    failing = [c.name for c in checks if not c.healthy]
    degraded = [c.name for c in checks if c.degraded]
    body = {
        "status": "unhealthy" if failing else "degraded" if degraded else "healthy",
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "services": {c.name: c.as_dict() for c in checks},
        "failing": failing,
    }
    if degraded:
        body["degraded"] = degraded
    return body


def _epoch(value: datetime) -> float:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
