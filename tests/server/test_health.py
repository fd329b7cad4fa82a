"""GET health: 200 when every check passes, 503 naming the failing checks otherwise."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest
import redis as redis_lib
from django.db import OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper
from rq import Worker
from rq.cron import CronScheduler

from collector_server.monitoring import health
from shared import streams

URL = "/api/v1/monitoring/health"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def health_client(redis_client):
    health._client.cache_clear()
    yield redis_client
    health._client.cache_clear()


@pytest.fixture
def live_pipeline(health_client):
    """A registered RQ worker and cron scheduler with fresh heartbeats, and both streams' groups."""
    worker = Worker(["ingest"], connection=health_client, name="test-worker")
    worker.register_birth()
    scheduler = CronScheduler(connection=health_client, name="test-scheduler")
    scheduler.register_birth()
    for kind in (streams.METRICS, streams.LOGS):
        health_client.xgroup_create(streams.stream_key(kind), streams.CONSUMER_GROUP, id="0", mkstream=True)
    return health_client


def test_healthy_pipeline_answers_200_with_every_service(anonymous, db, live_pipeline):
    response = anonymous.get(URL)
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "healthy"
    assert body["failing"] == []
    services = body["services"]
    assert set(services) == {"database", "redis", "workers", "scheduler", "streams", "agent_credentials"}
    assert services["workers"]["alive"] == 1
    assert services["workers"]["names"] == ["test-worker"]
    assert services["scheduler"]["names"] == ["test-scheduler"]
    assert services["redis"]["maxmemory_policy"] == "noeviction"
    assert services["streams"]["metrics"]["lag"] == 0


def test_no_worker_answers_503_naming_workers(anonymous, db, health_client):
    CronScheduler(connection=health_client, name="test-scheduler").register_birth()
    response = anonymous.get(URL)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["failing"] == ["workers"]
    assert "no RQ worker" in body["services"]["workers"]["error"]


def test_worker_with_stale_heartbeat_is_not_alive(anonymous, db, live_pipeline, settings):
    settings.HEALTH_WORKER_HEARTBEAT_SECONDS = 60
    worker = Worker.find_by_key(
        Worker.redis_worker_namespace_prefix + "test-worker", connection=live_pipeline
    )
    live_pipeline.hset(worker.key, "last_heartbeat", "2020-01-01T00:00:00.000000Z")
    body = anonymous.get(URL).json()
    assert body["failing"] == ["workers"]
    assert body["services"]["workers"]["registered"] == 1
    assert body["services"]["workers"]["alive"] == 0


def test_missing_scheduler_answers_503_naming_scheduler(anonymous, db, health_client):
    Worker(["ingest"], connection=health_client, name="w1").register_birth()
    body = anonymous.get(URL).json()
    assert "scheduler" in body["failing"]
    assert "no cron scheduler" in body["services"]["scheduler"]["error"]


def test_stream_lag_above_threshold_is_unhealthy(anonymous, db, live_pipeline, settings):
    settings.HEALTH_MAX_STREAM_LAG = 3
    key = streams.stream_key(streams.METRICS)
    for _ in range(5):
        live_pipeline.xadd(key, {b"b": b"x"})
    response = anonymous.get(URL)
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["streams"]
    assert body["services"]["streams"]["metrics"]["lag"] == 5
    assert "metrics stream lag 5 exceeds 3" in body["services"]["streams"]["error"]


def test_old_pending_entry_is_unhealthy(anonymous, db, live_pipeline):
    key = streams.stream_key(streams.LOGS)
    ten_minutes_ago_ms = int(time.time() * 1000) - 600_000
    live_pipeline.xadd(key, {b"b": b"x"}, id=f"{ten_minutes_ago_ms}-0")
    live_pipeline.xreadgroup(streams.CONSUMER_GROUP, "c1", {key: ">"}, count=1)
    body = anonymous.get(URL).json()
    assert body["failing"] == ["streams"]
    logs = body["services"]["streams"]["logs"]
    assert logs["pending"] == 1
    assert logs["oldest_pending_seconds"] >= 600
    assert "logs stream oldest pending entry" in body["services"]["streams"]["error"]


def test_unreachable_redis_fails_fast_naming_redis(anonymous, db, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    health._client.cache_clear()
    started = time.monotonic()
    response = anonymous.get(URL)
    health._client.cache_clear()
    assert time.monotonic() - started < 10
    assert response.status_code == 503
    body = response.json()
    assert body["services"]["database"]["healthy"] is True
    assert set(body["failing"]) == {"redis", "workers", "scheduler", "streams"}


@pytest.fixture
def evicting_redis():
    """A real redis-server on a free port configured with allkeys-lru."""
    port = free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--maxmemory-policy",
            "allkeys-lru",
        ],
        stdout=subprocess.DEVNULL,
    )
    client = redis_lib.Redis(port=port, socket_timeout=2)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis_lib.ConnectionError:
            time.sleep(0.05)
    yield client
    client.close()
    proc.terminate()
    proc.wait(timeout=10)


def test_redis_that_evicts_keys_is_reported_unhealthy(evicting_redis):
    check = health.check_redis(evicting_redis)
    assert check.healthy is False
    assert check.details["maxmemory_policy"] == "allkeys-lru"
    assert "must be 'noeviction'" in check.details["error"]


@pytest.mark.django_db
def test_server_scope_ignores_the_pipeline_for_probes(client, redis_client):
    """No worker and no scheduler: the pipeline is unhealthy, but the server can still answer."""
    full = client.get("/api/v1/monitoring/health")
    probe = client.get("/api/v1/monitoring/health?scope=server")
    assert full.status_code == 503 and "workers" in full.json()["failing"]
    assert probe.status_code == 200
    assert set(probe.json()["services"]) == {"database", "redis"}


@pytest.mark.django_db
def test_unknown_health_scope_is_a_400(client):
    response = client.get("/api/v1/monitoring/health?scope=everything")
    assert response.status_code == 400
    assert "scope" in response.json()["error"]


def test_live_scope_answers_200_without_a_single_query(client, db, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/api/v1/monitoring/health?scope=live")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "healthy"
    assert body["failing"] == []
    assert set(body) == {"status", "timestamp", "services", "failing"}
    assert body["services"] == {"process": {"healthy": True, "pid": os.getpid()}}


def test_live_scope_answers_200_while_postgres_and_redis_are_down(client, db, settings, monkeypatch):
    """The liveness probe must not restart server pods during a database or Redis outage."""
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    health._client.cache_clear()

    def database_down(*args, **kwargs):
        raise OperationalError("connection to server at 10.0.0.1, port 5432 failed: timeout expired")

    try:
        with monkeypatch.context() as patch:
            patch.setattr(BaseDatabaseWrapper, "cursor", database_down)
            readiness = client.get("/api/v1/monitoring/health?scope=server")
            liveness = client.get("/api/v1/monitoring/health?scope=live")
    finally:
        health._client.cache_clear()
    assert readiness.status_code == 503
    assert set(readiness.json()["failing"]) == {"database", "redis"}
    assert liveness.status_code == 200, liveness.json()
    assert liveness.json()["failing"] == []


def test_live_scope_opens_no_redis_connection(monkeypatch):
    def no_redis():
        raise AssertionError("scope=live must not talk to Redis")

    monkeypatch.setattr(health, "health_redis", no_redis)
    monkeypatch.setattr(health, "check_database", no_redis)
    assert [check.name for check in health.run_checks("live")] == ["process"]
