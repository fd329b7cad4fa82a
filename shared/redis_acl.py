"""The Redis ACL of the agents: XADD to the two ingest streams, nothing else.

One definition used everywhere: `make up` (collector_server/localstack.py) creates the
user with ``ensure_agent_user``; docker-compose.yml and the Helm chart carry the same rule
(tests/deploy check them against ``agent_rules``); workers verify at start-up with
``ACL DRYRUN`` that the agent user cannot do more (``check_agent_user``) and publish the
result for the health endpoint (``record_check`` / ``read_check``).
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis
from redis.cluster import RedisCluster

from shared import streams

DEFAULT_AGENT_USER = "fleetwatch-agent"
# What a producer needs: XADD, plus what a client sends while connecting. AUTH and HELLO are
# always allowed by Redis; SELECT for a database other than 0; CLIENT SETNAME for clients that
# name their connection. (redis-py also sends CLIENT SETINFO on Redis >= 7.2 and ignores the refusal.)
# A Redis Cluster client (STREAM_REDIS_CLUSTER) first reads the slot map (CLUSTER SLOTS) and the
# command table (COMMAND, for key positions): both describe the server, neither reads a key.
AGENT_COMMANDS = ("xadd", "auth", "hello", "ping", "select", "client|setname", "cluster|slots", "command")
# Commands the agent user must be refused: (command, args) run through ACL DRYRUN.
FORBIDDEN_PROBES: tuple[tuple[str, ...], ...] = (
    ("HSET", "rq:job:forged", "data", "x"),
    ("RPUSH", "rq:queue:ingest", "forged"),
    ("XRANGE", "{stream}", "-", "+"),
    ("XREADGROUP", "GROUP", "ingest", "c", "STREAMS", "{stream}", ">"),
    ("KEYS", "*"),
    ("CONFIG", "GET", "*"),
    ("DEL", "{stream}"),
    ("FLUSHDB",),
    ("EVAL", "return 1", "0"),
    ("XADD", "rq:queue:ingest", "*", "b", "x"),
)
CHECK_KEY_SUFFIX = "agent-acl"


def stream_keys(prefix: str | None = None, shards: int | None = None) -> list[str]:
    """The keys agents XADD to: every shard of metrics and logs (STREAM_SHARDS), and the unsharded ones.

    Each shard key is named exactly (no glob): an agent configured with more shards than the
    deployment reads is refused (NOPERM, it spools and logs) instead of writing where no
    worker reads.
    """
    return [
        *streams.shard_keys(streams.METRICS, shards, prefix),
        *streams.shard_keys(streams.LOGS, shards, prefix),
    ]


def agent_rules(prefix: str | None = None, shards: int | None = None) -> list[str]:
    """ACL rules of the agent user (after ``reset``), without the user name and password."""
    return [
        "resetkeys",
        "resetchannels",
        "-@all",
        *(f"+{command}" for command in AGENT_COMMANDS),
        *(f"~{key}" for key in stream_keys(prefix, shards)),
    ]


def acl_file_line(user: str, password: str, prefix: str | None = None, shards: int | None = None) -> str:
    """The agent user as one line of a Redis ACL file (``user <name> on ><password> ...``)."""
    return " ".join(["user", user, "on", f">{password}", *agent_rules(prefix, shards)])


def node_clients(client: Any) -> list[redis.Redis]:
    """The clients of every master of a Redis Cluster (ACLs are per node), or [client]."""
    if isinstance(client, RedisCluster):
        return [client.get_redis_connection(node) for node in client.get_primaries()]
    return [client]


def ensure_agent_user(
    client: redis.Redis, user: str, password: str, prefix: str | None = None, shards: int | None = None
) -> None:
    """Create or reset the agent user on `client`'s Redis, on every master of a cluster (needs ACL rights)."""
    rules = agent_rules(prefix, shards)
    for node in node_clients(client):
        node.execute_command("ACL", "SETUSER", user, "reset", "on", f">{password}", *rules)


def check_agent_user(
    client: redis.Redis, user: str, prefix: str | None = None, shards: int | None = None
) -> dict[str, Any]:
    """Return {"user", "exists", "problems", "checked"}: what the agent user may do beyond XADD.

    On a Redis Cluster every master is checked; a problem names the node.
    """
    nodes = node_clients(client)
    if len(nodes) == 1:
        return _check_node(nodes[0], user, prefix, shards)
    result: dict[str, Any] = {"user": user, "exists": True, "problems": [], "checked": True}
    for node in nodes:
        found = _check_node(node, user, prefix, shards)
        where = "{host}:{port}".format(**node.connection_pool.connection_kwargs)
        result["exists"] = result["exists"] and found["exists"]
        result["checked"] = result["checked"] and found["checked"]
        result["problems"] += [f"{where}: {problem}" for problem in found["problems"]]
        if "error" in found:
            result["error"] = f"{where}: {found['error']}"
    return result


def _check_node(client: redis.Redis, user: str, prefix: str | None, shards: int | None) -> dict[str, Any]:
    result: dict[str, Any] = {"user": user, "exists": False, "problems": [], "checked": False}
    try:
        if client.execute_command("ACL", "GETUSER", user) is None:
            return result
    except redis.ResponseError as exc:
        result["error"] = f"cannot read the ACL ({exc}); the agent user's rights are unknown"
        return result
    result["exists"] = True
    stream = stream_keys(prefix, shards)[0]
    for key in stream_keys(prefix, shards):
        if not _allowed(client, user, ("XADD", key, "*", "b", "x")):
            result["problems"].append(f"XADD to {key} is refused: agents cannot send")
    for probe in FORBIDDEN_PROBES:
        command = tuple(part.replace("{stream}", stream) for part in probe)
        if _allowed(client, user, command):
            result["problems"].append(f"{' '.join(command[:2])} is allowed: agents may only XADD")
    result["checked"] = True
    return result


def _allowed(client: redis.Redis, user: str, command: tuple[str, ...]) -> bool:
    reply = client.execute_command("ACL", "DRYRUN", user, *command)
    return reply in (b"OK", "OK")


def check_key(prefix: str | None = None) -> str:
    return f"{prefix if prefix is not None else streams.prefix()}:{CHECK_KEY_SUFFIX}"


def record_check(
    client: redis.Redis, user: str, prefix: str | None = None, shards: int | None = None
) -> dict[str, Any]:
    """Check the agent user and keep the result in Redis for the health endpoint."""
    try:
        result = check_agent_user(client, user, prefix, shards)
    except redis.RedisError as exc:
        result = {"user": user, "exists": False, "problems": [], "checked": False, "error": str(exc)}
    result["checked_at"] = time.time()
    client.set(check_key(prefix), json.dumps(result))
    return result


def read_check(client: redis.Redis, prefix: str | None = None) -> dict[str, Any] | None:
    raw = client.get(check_key(prefix))
    return json.loads(raw) if raw else None
