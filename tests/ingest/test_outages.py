"""A real scheduler and worker outlive a Redis restart and a Postgres restart and ingest resumes.

Each test runs its own redis-server (append-only file, so the restart keeps the data) and, for
Postgres, its own cluster: the machine's shared servers are never stopped.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection
from rq import Worker
from rq.cron import CronScheduler

from .conftest import make_batch, sample_count
from .own_servers import OwnPostgres, OwnRedis, log_text, process, stop_processes, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BATCH_SAMPLES = 2  # make_batch() holds two series of one point each
OUTAGE_SECONDS = 4  # how long the dependency stays down once both processes noticed (not a sync)


def stack_env(redis_url: str, database_url: str, prefix: str) -> dict[str, str]:
    return dict(
        os.environ,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SECRET_KEY="test",
        LOG_FORMAT="text",
        FLEETWATCH_STREAM_PREFIX=prefix,
        FLEETWATCH_ALLOW_VOLATILE_REDIS="false",  # this Redis keeps an append-only file
        RECONNECT_MAX_SECONDS="1",
        INGEST_JOB_SECONDS="3",
        INGEST_CLAIM_IDLE_MS="1000",
    )


def shared_test_database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def push(client, prefix: str, count: int) -> None:
    for _ in range(count):
        client.xadd(f"{prefix}:stream:metrics", {"b": make_batch()})


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("clean_tables")
def test_scheduler_and_worker_outlive_a_redis_restart_and_ingest_resumes(tmp_path: Path):
    redis_server = OwnRedis(tmp_path).start()
    prefix = f"fwout-{uuid.uuid4().hex[:6]}"
    env = stack_env(redis_server.url, shared_test_database_url(), prefix)
    logs = {name: tmp_path / f"{name}.log" for name in ("scheduler", "worker")}
    scheduler = process(["scheduler"], env, logs["scheduler"], ROOT)
    worker = process(["worker"], env, logs["worker"], ROOT)
    try:
        push(redis_server.client(), prefix, 5)
        wait_until(lambda: sample_count() == 5 * BATCH_SAMPLES, 90, "the first batches to be stored")

        push(redis_server.client(), prefix, 5)  # in the stream when Redis goes down: must survive
        redis_server.stop()
        for name in logs:
            wait_until(
                lambda n=name: "Redis is unreachable" in log_text(logs[n]), 60, f"the {name} to notice"
            )
        time.sleep(OUTAGE_SECONDS)
        assert scheduler.poll() is None and worker.poll() is None

        redis_server.start()  # same port, same folder: the append-only file brings the stream back
        push(redis_server.client(), prefix, 5)
        wait_until(lambda: sample_count() >= 15 * BATCH_SAMPLES, 120, "ingest to resume after the restart")
        assert sample_count() == 15 * BATCH_SAMPLES  # nothing lost, nothing stored twice
        for name in logs:
            wait_until(
                lambda n=name: "Redis is back" in log_text(logs[n]), 30, f"the {name} to log the recovery"
            )
        assert scheduler.poll() is None, log_text(logs["scheduler"])
        assert worker.poll() is None, log_text(logs["worker"])

        client = redis_server.client()
        assert [w for w in Worker.all(connection=client) if w.last_heartbeat], "worker registration is back"
        assert CronScheduler.all(connection=client, cleanup=False), "scheduler registration is back"
        assert client.get(f"{prefix}:scheduler:leader"), "the scheduler holds its lease again"
    finally:
        stop_processes(scheduler, worker)
        redis_server.stop()
    scheduler_log, worker_log = log_text(logs["scheduler"]), log_text(logs["worker"])
    # Once per outage and process: the scheduler, the worker, and RQ's scheduler process in the worker.
    assert scheduler_log.count("Redis is unreachable") == 1, scheduler_log[-3000:]
    assert worker_log.count("fleetwatch.worker: Redis is unreachable") == 1, worker_log[-3000:]
    assert worker_log.count("rq.scheduler: Redis is unreachable") <= 1, worker_log[-3000:]
    assert "could not connect to Redis instance" not in worker_log
    assert "unhandled exception, quitting" not in worker_log


@pytest.mark.slow
def test_worker_outlives_a_postgres_restart_and_drains_the_backlog(tmp_path: Path):
    postgres = OwnPostgres().init()
    redis_server = OwnRedis(tmp_path).start()
    logs = {name: tmp_path / f"{name}.log" for name in ("scheduler", "worker")}
    procs = []
    try:
        postgres.start()
        postgres.create_database()
        prefix = f"fwpg-{uuid.uuid4().hex[:6]}"
        env = stack_env(redis_server.url, postgres.url, prefix)
        migrate = process_run(["migrate"], env)
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        procs = [
            process(["scheduler"], env, logs["scheduler"], ROOT),
            process(["worker"], env, logs["worker"], ROOT),
        ]
        samples = "SELECT count(*) FROM monitoring_sample"

        push(redis_server.client(), prefix, 5)
        wait_until(lambda: postgres.query(samples) == 5 * BATCH_SAMPLES, 90, "the first batches to be stored")

        postgres.stop()
        push(redis_server.client(), prefix, 10)  # arrives while Postgres is down
        wait_until(lambda: "Postgres is unreachable" in log_text(logs["worker"]), 60, "the worker to notice")
        time.sleep(OUTAGE_SECONDS)
        assert all(p.poll() is None for p in procs)

        postgres.start()
        wait_until(lambda: postgres.query(samples) == 15 * BATCH_SAMPLES, 180, "the backlog to drain")
        wait_until(
            lambda: "Postgres is back" in log_text(logs["worker"]), 60, "the worker to log the recovery"
        )
        assert all(p.poll() is None for p in procs), log_text(logs["worker"])[-3000:]
    finally:
        stop_processes(*procs)
        redis_server.stop()
        postgres.remove()
    text = log_text(logs["worker"])
    assert text.count("Postgres is unreachable") == 1, text[-3000:]
    assert "unhandled exception, quitting" not in text


def process_run(args: list[str], env: dict[str, str]):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "collector_server", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("clean_tables")
def test_registrations_and_lease_come_back_after_redis_restarts_empty(tmp_path: Path):
    redis_server = OwnRedis(tmp_path, appendonly=False).start()  # keeps nothing across the restart
    prefix = f"fwempty-{uuid.uuid4().hex[:6]}"
    env = dict(
        stack_env(redis_server.url, shared_test_database_url(), prefix),
        FLEETWATCH_ALLOW_VOLATILE_REDIS="true",
    )
    logs = {name: tmp_path / f"{name}.log" for name in ("scheduler", "worker")}
    scheduler = process(["scheduler"], env, logs["scheduler"], ROOT)
    worker = process(["worker"], env, logs["worker"], ROOT)
    try:
        client = redis_server.client()
        wait_until(
            lambda: Worker.all(connection=client) and CronScheduler.all(connection=client), 60, "registration"
        )
        redis_server.stop()
        for name in logs:
            wait_until(
                lambda n=name: "Redis is unreachable" in log_text(logs[n]), 60, f"the {name} to notice"
            )
        redis_server.start()
        for name in logs:
            wait_until(lambda n=name: "Redis is back" in log_text(logs[n]), 60, f"the {name} to reconnect")
        client = redis_server.client()
        wait_until(lambda: [w for w in Worker.all(connection=client)], 30, "the worker to register again")
        wait_until(
            lambda: CronScheduler.all(connection=client, cleanup=False), 30, "the scheduler to register again"
        )
        wait_until(
            lambda: client.get(f"{prefix}:scheduler:leader"), 30, "the scheduler to take its lease again"
        )
        push(client, prefix, 3)
        wait_until(lambda: sample_count() == 3 * BATCH_SAMPLES, 90, "ingest on the emptied Redis")
        assert scheduler.poll() is None and worker.poll() is None
    finally:
        stop_processes(scheduler, worker)
        redis_server.stop()


@pytest.mark.slow
def test_worker_and_scheduler_started_before_redis_wait_for_it(tmp_path: Path):
    redis_server = OwnRedis(tmp_path)  # not started yet
    env = stack_env(redis_server.url, shared_test_database_url(), f"fwlate-{uuid.uuid4().hex[:6]}")
    logs = {name: tmp_path / f"{name}.log" for name in ("scheduler", "worker")}
    procs = [process([name], env, logs[name], ROOT) for name in logs]
    try:
        for name in logs:
            wait_until(lambda n=name: "Redis is unreachable" in log_text(logs[n]), 60, f"the {name} to wait")
        assert all(p.poll() is None for p in procs)
        redis_server.start()
        client = redis_server.client()
        wait_until(lambda: Worker.all(connection=client), 60, "the worker to register")
        wait_until(
            lambda: CronScheduler.all(connection=client, cleanup=False), 60, "the scheduler to register"
        )
        assert all(p.poll() is None for p in procs)
    finally:
        stop_processes(*procs)
        redis_server.stop()
