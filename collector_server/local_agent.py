"""The local agent of `make up`: enrolled, and on its own Redis user that may only XADD.

Called from collector_server/localstack.py (and the end-to-end fixture, which enrolls but
never touches the ACL of a shared Redis). The credential lands in the agent's state
directory; the Redis password in ``var/agent-redis-password`` (mode 0600).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import redis

from shared import redis_acl, streams

ROOT = Path(__file__).resolve().parent.parent


def agent_host(env: dict[str, str]) -> str:
    return env.get("FLEETWATCH_AGENT_HOST") or socket.gethostname()


def enroll(env: dict[str, str]) -> Path:
    """Enroll the local agent once: write the credential into its state directory."""
    path = Path(env["FLEETWATCH_AGENT_STATE_DIR"]) / "credential"
    if path.exists() and path.read_text().strip():
        return path
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "collector_server", "manage", "enroll-agent", agent_host(env)),
            *("--credential-file", str(path), "--note", "the local agent of make up"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"could not enroll the local agent:\n{proc.stdout}{proc.stderr}")
    return path


def agent_redis_url(redis_url: str, user: str, password: str) -> str:
    """`redis_url` with the agent's user and password instead of its own."""
    parsed = urlparse(redis_url)
    netloc = f"{user}:{password}@{parsed.hostname}" + (f":{parsed.port}" if parsed.port else "")
    return parsed._replace(netloc=netloc).geturl()


def create_redis_user(env: dict[str, str], var: Path) -> str | None:
    """Create the agent user on the local Redis; return the agent's Redis URL (None if ACLs are refused)."""
    user = env.get("REDIS_AGENT_USER") or redis_acl.DEFAULT_AGENT_USER
    secret_file = var / "agent-redis-password"
    if not secret_file.exists():
        var.mkdir(parents=True, exist_ok=True)
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(24))
    password = secret_file.read_text().strip()
    redis_url = env.get("STREAM_REDIS_URL") or env["REDIS_URL"]  # the agents write to the streams' Redis
    client = redis.Redis.from_url(redis_url)
    try:
        shards = streams.parse_shards(env.get("STREAM_SHARDS") or "1")
        redis_acl.ensure_agent_user(
            client, user, password, env.get("FLEETWATCH_STREAM_PREFIX") or None, shards
        )
    except redis.RedisError as exc:
        print(f"warning: cannot create the agent's Redis user ({exc}); the agent uses REDIS_URL")
        return None
    finally:
        client.close()
    return agent_redis_url(redis_url, user, password)
