"""End to end for logs: apps using the SDK → a running agent → stream → worker → search API."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model

from collector_server.localstack import Stack, http_get
from tests.members import issue_token, member

from .conftest import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
APPS = Path(__file__).with_name("monitored_apps.py")


def run_app(kind: str, env: dict[str, str], paths: list[str], request_ids: list[str]) -> None:
    port = free_port()
    app = subprocess.Popen(
        [sys.executable, str(APPS), kind, str(port), str(len(paths))],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert app.stdout.readline().strip() == "ready"
    for path, request_id in zip(paths, request_ids, strict=True):
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{path}", headers={"X-Request-ID": request_id}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.headers["X-Request-ID"] == request_id
        except urllib.error.HTTPError as exc:
            assert exc.code == 502 and exc.headers["X-Request-ID"] == request_id
    assert app.wait(timeout=30) == 0, app.stdout.read()


def search(stack: Stack, token: str, **params: str) -> list[dict]:
    status, body = http_get(f"http://127.0.0.1:{stack.port}/api/v1/logs/search?{urlencode(params)}", token)
    assert status == 200, body
    return json.loads(body)["data"]


def wait_for(fetch, predicate, timeout: float = 90.0):
    deadline = time.time() + timeout
    value = fetch()
    while not predicate(value) and time.time() < deadline:
        time.sleep(1)
        value = fetch()
    return value


def test_app_logs_and_api_metrics_reach_search_and_metrics(stack: Stack):
    token = issue_token(member(get_user_model().objects.create_user("dev", password="x"), "viewer"), "viewer")
    stack.wait_http("/api/v1/monitoring/health", timeout=90, ok=(200, 503))
    run_app("wsgi", stack.env, ["/sku/1", "/fail/77", "/sku/2"], ["req-w1", "req-w2", "req-w3"])
    run_app("django", stack.env, ["/checkout/A1", "/checkout/B2"], ["req-d1", "req-d2"])

    by_request = wait_for(lambda: search(stack, token, request_id="req-w2"), lambda rows: len(rows) >= 2)
    messages = {row["message"] for row in by_request}
    assert "payment 4242 declined by upstream" in messages
    assert all(row["request_id"] == "req-w2" and row["service"] == "inventory" for row in by_request)

    errors = wait_for(
        lambda: search(stack, token, level="ERROR", service="inventory"), lambda rows: len(rows) >= 2
    )
    # The app's own error, and the middleware's line for the 502 it answered.
    assert "payment 4242 declined by upstream" in {row["message"] for row in errors}
    assert {row["request_id"] for row in errors} == {"req-w2"}

    regex = wait_for(
        lambda: search(stack, token, pattern="checkout slow for order [AB][12]"), lambda r: len(r) >= 2
    )
    assert sorted(row["request_id"] for row in regex) == ["req-d1", "req-d2"]
    assert {row["service"] for row in regex} == {"shop"}

    def api_rows():
        status, body = http_get(
            f"http://127.0.0.1:{stack.port}/api/v1/monitoring/metrics/api?minutes=10", token
        )
        return json.loads(body).get("data", []) if status == 200 else []

    rows = wait_for(api_rows, lambda rows: {r.get("endpoint") for r in rows} >= {"/checkout/<str:order>"})
    endpoints = {r["endpoint"] for r in rows}
    assert "/checkout/<str:order>" in endpoints, rows
    assert sum(r["requests"] for r in rows if r["endpoint"] == "/checkout/<str:order>") == 2
