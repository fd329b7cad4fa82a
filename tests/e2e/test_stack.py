"""End to end: the real server, worker, scheduler and agent; this host's metrics through the API."""

from __future__ import annotations

import json
import socket
import time

import pytest
from django.contrib.auth import get_user_model

from collector_server.localstack import Stack, http_get
from tests.members import issue_token, member

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def get_json(stack: Stack, path: str, token: str) -> tuple[int, dict]:
    status, body = http_get(f"http://127.0.0.1:{stack.port}{path}", token)
    return status, (json.loads(body) if body.startswith("{") else {})


def test_this_hosts_metrics_reach_the_api(stack: Stack):
    user = get_user_model().objects.create_user("operator", password="x")
    token = issue_token(member(user, "admin"), "admin")
    stack.wait_http("/api/v1/monitoring/health", timeout=90, ok=(200, 503))

    deadline = time.time() + 120
    rows: list[dict] = []
    while time.time() < deadline:
        status, body = get_json(stack, "/api/v1/monitoring/metrics/system?minutes=5", token)
        rows = [r for r in body.get("data", []) if r.get("cpu_percent") is not None]
        if status == 200 and len(rows) >= 2:
            break
        time.sleep(1)
    logs = {p.name: p.read_text()[-1500:] for p in (stack.var / "log").glob("*.log")}
    assert len(rows) >= 2, logs
    assert all(0 <= r["cpu_percent"] <= 100 for r in rows)
    assert all(0 < r["memory_percent"] <= 100 for r in rows)
    assert rows[-1]["network_bytes_recv"] > 0

    status, hosts = get_json(stack, "/api/v1/monitoring/hosts", token)
    assert status == 200
    names = [h["hostname"] for h in hosts.get("results", hosts.get("data", []))]
    assert socket.gethostname() in names

    status, _ = http_get(f"http://127.0.0.1:{stack.port}/api/v1/monitoring/metrics/system?minutes=5")
    assert status in (401, 403)  # the API needs a token

    deadline = time.time() + 60
    while time.time() < deadline:
        status, health = get_json(stack, "/api/v1/monitoring/health", token)
        if status == 200:
            break
        time.sleep(1)
    assert status == 200, health
