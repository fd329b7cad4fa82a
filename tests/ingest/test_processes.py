"""The real worker and scheduler processes, started as an operator would."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
import redis as redis_lib
from django.db import connection

from alerting_worker.redis_checks import check_redis
from alerting_worker.schedule import SCHEDULE

from .conftest import make_batch, sample_count

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def process_env(redis_url: str) -> dict[str, str]:
    db = connection.settings_dict
    return dict(
        os.environ,
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        REDIS_URL=redis_url,
        SECRET_KEY="test",
        LOG_FORMAT="text",
    )


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "alerting_worker", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def stop(*procs: subprocess.Popen) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("clean_tables")
def test_scheduler_and_worker_drain_the_stream(redis_client, redis_url, metrics_stream):
    env = dict(process_env(redis_url), INGEST_LOG_SUMMARY_SECONDS="1")
    scheduler = start(["scheduler"], env)
    worker = start(["worker"], env)
    try:
        for _ in range(5):
            redis_client.xadd(metrics_stream, {"b": make_batch()})
        deadline = time.time() + 60
        while sample_count() < 10 and time.time() < deadline:
            assert worker.poll() is None and scheduler.poll() is None
            time.sleep(0.3)
        assert sample_count() == 10
    finally:
        stop(scheduler, worker)
    log = worker.stdout.read().decode()
    # Routine drains log at DEBUG; a periodic INFO summary sums them up.
    assert "ingest summary" in log and "metrics: " in log and " samples" in log
    assert "ingest: Job OK" not in log and "drain_metrics()" not in log
    assert "result is kept for" not in log
    assert "Enqueued job drain_metrics" not in scheduler.stdout.read().decode()


@pytest.mark.django_db(transaction=True)
def test_a_second_scheduler_does_not_run_alongside_the_first(redis_client, redis_url):
    env = process_env(redis_url)
    first = start(["scheduler"], env)
    try:
        deadline = time.time() + 30
        while not redis_client.keys("*:scheduler:leader") and time.time() < deadline:
            time.sleep(0.2)
        second = subprocess.run(
            [sys.executable, "-m", "alerting_worker", "scheduler", "--no-wait"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert "another scheduler is running" in second.stderr
    finally:
        stop(first)


def test_worker_refuses_an_unknown_queue(redis_url):
    proc = subprocess.run(
        [sys.executable, "-m", "alerting_worker", "worker", "--queues", "ingest,bogus", "--burst"],
        cwd=ROOT,
        env=dict(os.environ, REDIS_URL=redis_url, SECRET_KEY="x"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "unknown queue 'bogus'" in proc.stderr


def test_schedule_names_importable_jobs():
    import importlib

    for entry in SCHEDULE:
        module, _, attr = entry.func.rpartition(".")
        assert callable(getattr(importlib.import_module(module), attr)), entry.func


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_eviction_policy_other_than_noeviction_is_reported(tmp_path):
    port = _free_port()
    server = subprocess.Popen(
        [
            shutil.which("redis-server"),
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--maxmemory-policy",
            "allkeys-lru",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        client = redis_lib.Redis(port=port)
        for _ in range(50):
            try:
                client.ping()
                break
            except redis_lib.ConnectionError:
                time.sleep(0.1)
        problems = check_redis(client, socket_timeout=30, block_ms=1000)
        assert len(problems) == 1 and "'allkeys-lru'" in problems[0] and "noeviction" in problems[0]
        worker = subprocess.run(
            [sys.executable, "-m", "alerting_worker", "worker", "--burst"], cwd=ROOT, capture_output=True,
            text=True, timeout=60, env=dict(os.environ, REDIS_URL=f"redis://127.0.0.1:{port}/0", SECRET_KEY="x"),
        )  # fmt: skip
        assert worker.returncode == 2
        assert "refusing to start" in worker.stderr and "allkeys-lru" in worker.stderr
    finally:
        server.terminate()
        server.wait()


def test_socket_timeout_shorter_than_blocking_read_is_reported(redis_client):
    problems = check_redis(redis_client, socket_timeout=1, block_ms=5000)
    assert problems == [
        "REDIS_SOCKET_TIMEOUT=1s must exceed INGEST_BLOCK_MS=5000ms, or every blocking stream read times out"
    ]
