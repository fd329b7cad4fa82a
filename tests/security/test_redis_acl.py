"""The agents' Redis user may XADD to the ingest streams and nothing else.

Every test runs its own redis-server on a free port: ACLs are never changed on the
machine's shared Redis.
"""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest
import redis

from collector_server import local_agent
from collector_server.monitoring import health
from shared import redis_acl, streams
from tests.agent.conftest import PrivateRedis, free_port, wait_until
from tests.deploy.manifests import container, env_map, find, pod_spec

FORBIDDEN = [
    ("HSET", "rq:job:forged", "data", "x"),
    ("RPUSH", "rq:queue:ingest", "forged"),
    ("XRANGE", "{metrics}", "-", "+"),
    ("KEYS", "*"),
    ("CONFIG", "GET", "*"),
    ("DEL", "{metrics}"),
    ("FLUSHDB",),
    ("XADD", "rq:queue:other", "*", "b", "x"),
]


def assert_may_only_xadd(url: str, prefix: str = "fleetwatch") -> None:
    client = redis.Redis.from_url(url, socket_timeout=5)
    metrics = streams.stream_key(streams.METRICS, prefix)
    assert client.xadd(metrics, {"b": b"batch"})
    assert client.xadd(streams.stream_key(streams.LOGS, prefix), {"b": b"batch"})
    for command in FORBIDDEN:
        args = [part.replace("{metrics}", metrics) for part in command]
        with pytest.raises(redis.exceptions.NoPermissionError):  # the NOPERM reply
            client.execute_command(*args)
    client.close()


@pytest.fixture
def own_redis(tmp_path: Path):
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.kill()


def test_the_agent_user_make_up_creates_may_only_xadd(own_redis, tmp_path):
    url = local_agent.create_redis_user({"REDIS_URL": own_redis.url}, tmp_path / "var")
    assert urlparse(url).username == redis_acl.DEFAULT_AGENT_USER
    assert (tmp_path / "var" / "agent-redis-password").stat().st_mode & 0o077 == 0
    assert_may_only_xadd(url)


def test_worker_check_of_the_agent_user_is_reported_on_health(own_redis, tmp_path):
    client = own_redis.client()
    redis_acl.record_check(client, "nobody")
    missing = health.check_agent_acl(client)
    assert missing.healthy and "does not exist" in missing.details["warning"]

    redis_acl.ensure_agent_user(client, "agent", "pw")
    assert redis_acl.record_check(client, "agent")["problems"] == []
    assert health.check_agent_acl(client).healthy

    client.execute_command("ACL", "SETUSER", "agent", "+@all", "~*")  # a careless widening
    result = redis_acl.record_check(client, "agent")
    check = health.check_agent_acl(client)
    assert not check.healthy
    assert "HSET rq:job:forged is allowed" in check.details["error"]
    assert len(result["problems"]) == len(redis_acl.FORBIDDEN_PROBES)


def compose_redis(compose: dict, directory: Path) -> tuple[subprocess.Popen, int]:
    """Start redis-server with the Compose service's own command line, on a free port."""
    command = compose["services"]["redis"]["command"]
    assert command[0] == "redis-server"
    port = free_port()
    local = ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory), "--appendonly", "no"]
    proc = subprocess.Popen([*command, *local], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, port


def with_port(url: str, port: int) -> str:
    parsed = urlparse(url)
    return parsed._replace(netloc=f"{parsed.username}:{parsed.password}@127.0.0.1:{port}").geturl()


def test_compose_redis_gives_the_agent_only_xadd_and_disables_the_default_user(compose, tmp_path):
    proc, port = compose_redis(compose, tmp_path)
    try:
        workers_url = with_port(compose["services"]["worker"]["environment"]["REDIS_URL"], port)
        agent_url = with_port(compose["services"]["agent"]["environment"]["FLEETWATCH_AGENT_REDIS_URL"], port)
        wait_until(lambda: _pings(workers_url), timeout=10)
        assert urlparse(agent_url).username == redis_acl.DEFAULT_AGENT_USER
        assert_may_only_xadd(agent_url)
        workers = redis.Redis.from_url(workers_url)
        assert workers.hset("rq:job:x", "data", "x") == 1  # the workers' user keeps every right
        assert redis_acl.check_agent_user(workers, redis_acl.DEFAULT_AGENT_USER)["problems"] == []
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=port).ping()  # the default user is off
        assert "REDIS_URL" not in compose["services"]["agent"]["environment"]
        # The Redis health check, as Compose runs it inside the container (REDISCLI_AUTH from .env).
        service = compose["services"]["redis"]
        test = service["healthcheck"]["test"]
        assert test[0] == "CMD-SHELL"
        check_env = {**os.environ, **service["environment"]}
        command = test[1].replace("redis-cli", f"redis-cli -p {port}", 1)
        assert subprocess.run(["sh", "-c", command], env=check_env, timeout=10).returncode == 0
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _pings(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def secret_refs(workload: dict) -> set[str]:
    """Every Secret a workload's pods read: env, envFrom and volumes."""
    spec = pod_spec(workload)
    names = {v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v}
    for ctr in spec.get("containers", []) + spec.get("initContainers", []):
        names |= {e["secretRef"]["name"] for e in ctr.get("envFrom", []) if "secretRef" in e}
        names |= {
            e["valueFrom"]["secretKeyRef"]["name"]
            for e in ctr.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})
        }
    return names


@pytest.mark.django_db
def test_helm_daemonset_reads_only_the_agent_secret_whose_user_the_acl_job_limits_to_xadd(
    render, own_redis, settings
):
    from django.core.management import call_command

    from collector_server import redis_conn

    docs = render()
    agent_secret = find(docs, "Secret", "-agent")
    assert secret_refs(find(docs, "DaemonSet")) == {agent_secret["metadata"]["name"]}
    job = find(docs, "Job", "-redis-acl")
    assert container(job)["command"] == ["fleetwatch-manage", "redis-agent-user"]
    env = env_map(container(job))
    assert env["AGENT_REDIS_URL"]["valueFrom"]["secretKeyRef"]["name"] == agent_secret["metadata"]["name"]
    assert (
        env["REDIS_URL"]["valueFrom"]["secretKeyRef"]["name"]
        == find(docs, "Secret", "fleetwatch")["metadata"]["name"]
    )
    # Run the Job's command as it would run, against a redis-server of our own.
    agent_url = with_port(base64.b64decode(agent_secret["data"]["REDIS_URL"]).decode(), own_redis.port)
    settings.REDIS_URL = own_redis.url
    redis_conn._client.cache_clear()
    try:
        call_command("redis-agent-user", agent_url=agent_url)
    finally:
        redis_conn._client.cache_clear()
    assert_may_only_xadd(agent_url)
