"""A Redis that would lose the streams on a restart is reported as degraded, naming the setting.

Each test runs its own redis-server (with or without an append-only file): the machine's
shared Redis is never reconfigured.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from alerting_worker.redis_checks import check_durability, persistence_settings
from collector_server.monitoring import health
from tests.ingest.own_servers import OwnRedis

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def volatile_redis(tmp_path):
    server = OwnRedis(tmp_path, appendonly=False, save="").start()
    yield server
    server.stop()


@pytest.fixture
def durable_redis(tmp_path):
    server = OwnRedis(tmp_path, appendonly=True).start()
    yield server
    server.stop()


def test_redis_without_persistence_is_named_with_the_setting(volatile_redis):
    client = volatile_redis.client()
    assert persistence_settings(client) == {"appendonly": "no", "save": ""}
    (problem,) = check_durability(client)
    assert "appendonly 'no'" in problem and "restart loses every batch" in problem
    assert "FLEETWATCH_ALLOW_VOLATILE_REDIS" in problem
    assert check_durability(client, allow_volatile=True) == []


def test_snapshots_without_an_append_only_file_are_still_named(tmp_path):
    server = OwnRedis(tmp_path, appendonly=False, save="900 1").start()
    try:
        (problem,) = check_durability(server.client())
    finally:
        server.stop()
    assert "appendonly is 'no'" in problem and "since the last snapshot" in problem


def test_redis_with_an_append_only_file_has_no_durability_problem(durable_redis):
    assert check_durability(durable_redis.client()) == []


def test_health_reports_a_volatile_redis_as_degraded_with_200(client, db, settings, volatile_redis):
    settings.ALLOW_VOLATILE_REDIS = False
    settings.REDIS_URL = volatile_redis.url
    health._client.cache_clear()
    try:
        response = client.get("/api/v1/monitoring/health?scope=server")
    finally:
        health._client.cache_clear()
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "degraded" and body["degraded"] == ["redis"] and body["failing"] == []
    redis_check = body["services"]["redis"]
    assert redis_check["healthy"] is True and redis_check["degraded"] is True
    assert redis_check["persistence"] == {"appendonly": "no", "save": ""}
    assert "appendonly" in redis_check["warning"]


def test_health_with_the_opt_out_or_a_durable_redis_is_healthy(
    client, db, settings, volatile_redis, durable_redis
):
    for url, allow in ((volatile_redis.url, True), (durable_redis.url, False)):
        settings.ALLOW_VOLATILE_REDIS = allow
        settings.REDIS_URL = url
        health._client.cache_clear()
        body = client.get("/api/v1/monitoring/health?scope=server").json()
        assert body["status"] == "healthy", body
        assert "degraded" not in body["services"]["redis"]
    health._client.cache_clear()


def test_worker_warns_loudly_at_start_about_a_volatile_redis(volatile_redis):
    env = dict(
        os.environ, REDIS_URL=volatile_redis.url, SECRET_KEY="x", FLEETWATCH_ALLOW_VOLATILE_REDIS="false"
    )
    worker = subprocess.run(
        [sys.executable, "-m", "alerting_worker", "worker", "--burst"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert worker.returncode == 0, worker.stderr
    output = worker.stdout + worker.stderr
    assert "WARNING" in output and "appendonly 'no'" in output and "FLEETWATCH_ALLOW_VOLATILE_REDIS" in output
