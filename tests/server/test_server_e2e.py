"""End to end: a real gunicorn serving the app and a real RQ worker process, probed over HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families
from rq.cron import CronScheduler

from shared import streams

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def fetch(url: str) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url)
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.fixture
def server_env(transactional_db, redis_client, redis_url) -> dict[str, str]:
    db = settings.DATABASES["default"]
    env = dict(os.environ)
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    env.update(
        DATABASE_URL=f"postgres://{db['USER'] or 'postgres'}@{host}:{port}/{db['NAME']}",
        REDIS_URL=redis_url,
        FLEETWATCH_STREAM_PREFIX=streams.prefix(),
        SECRET_KEY="e2e-secret-key-not-for-production",
        DJANGO_SETTINGS_MODULE="collector_server.settings",
        LOG_FORMAT="text",
        PYTHONPATH=str(REPO),
    )
    return env


@pytest.fixture
def gunicorn(server_env):
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1", "collector_server.wsgi"],
        env=server_env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return fetch(base + "/metrics")[0] == 200
        except OSError:
            return False

    try:
        wait_until(up, what="gunicorn to answer")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_health_over_http_turns_healthy_when_a_real_worker_runs(gunicorn, redis_client, server_env):
    """The test stands in for the scheduler (a registered cron scheduler) and starts a real `rq worker`."""
    CronScheduler(connection=redis_client, name="e2e-scheduler").register_birth()
    status, body, _ = fetch(gunicorn + "/api/v1/monitoring/health")
    assert status == 503
    assert "workers" in json.loads(body)["failing"]

    worker = subprocess.Popen(
        [str(BIN / "rq"), "worker", "--url", server_env["REDIS_URL"], "--name", "e2e-worker", "maintenance"],
        env=server_env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: redis_client.exists("rq:worker:e2e-worker"), what="the RQ worker to register")
        status, body, _ = fetch(gunicorn + "/api/v1/monitoring/health")
        report = json.loads(body)
        assert status == 200, report
        assert report["services"]["workers"]["names"] == ["e2e-worker"]
        metrics = {
            f.name: f for f in text_string_to_metric_families(fetch(gunicorn + "/metrics")[1].decode())
        }
        assert metrics["fleetwatch_workers"].samples[0].value == 1
    finally:
        worker.terminate()
        worker.wait(timeout=20)
    # A worker that stops cleanly unregisters: the probe is unhealthy again.
    assert json.loads(fetch(gunicorn + "/api/v1/monitoring/health")[1])["failing"] == ["workers"]


def test_api_needs_credentials_and_dashboard_redirects_over_http(gunicorn):
    status, body, _ = fetch(gunicorn + "/api/v1/monitoring/hosts")
    assert status == 401
    assert json.loads(body)["success"] is False
    status, _, headers = fetch(gunicorn + "/")
    assert status == 302
    assert headers["Location"].startswith("/login/")
