"""End to end: an app using the SDK's record_inference → the agent → stream → worker → models API."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model

from collector_server.inference.models import ModelPrice
from collector_server.localstack import Stack, http_get
from tests.members import issue_token, member

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
APP = Path(__file__).with_name("inference_app.py")


def get(stack: Stack, token: str, path: str, **params: str) -> dict:
    status, body = http_get(f"http://127.0.0.1:{stack.port}{path}?{urlencode(params)}", token)
    assert status == 200, body
    return json.loads(body)


def wait_for(fetch, predicate, timeout: float = 90.0):
    deadline = time.time() + timeout
    value = fetch()
    while not predicate(value) and time.time() < deadline:
        time.sleep(1)
        value = fetch()
    return value


def test_sdk_inferences_reach_the_models_api_with_the_same_numbers(stack: Stack):
    token = issue_token(member(get_user_model().objects.create_user("llm", password="x"), "viewer"), "viewer")
    ModelPrice.objects.create(model="qwen2.5:7b", input_per_1k=Decimal("0.2"), output_per_1k=Decimal("0.6"))
    stack.wait_http("/api/v1/monitoring/health", timeout=90, ok=(200, 503))
    app = subprocess.run(
        [sys.executable, str(APP)], env=stack.env, capture_output=True, text=True, timeout=60
    )
    assert app.returncode == 0 and "done" in app.stdout, app.stdout + app.stderr

    def rows():
        return {
            (r["model"], r["organization"]): r
            for r in get(stack, token, "/api/v1/monitoring/models", hours="1", by="organization")["models"]
        }

    got = wait_for(rows, lambda r: len(r) == 4 and r.get(("llama3", "swag"), {}).get("requests") == 2)
    qs, qc, ls, lc = (
        got[("qwen2.5:7b", "swag")],
        got[("qwen2.5:7b", "sci")],
        got[("llama3", "swag")],
        got[("llama3", "sci")],
    )
    assert (qs["requests"], qs["errors"], qs["input_tokens"], qs["output_tokens"]) == (2, 0, 1100, 210)
    # 0.001 reported + the priced one: 1000/1000 x 0.2 + 200/1000 x 0.6
    assert qs["cost_usd"] == pytest.approx(0.001 + 0.2 + 0.12)
    assert (qc["requests"], qc["errors"], qc["error_rate"]) == (1, 1, 1.0)
    assert qc["cost_usd"] == pytest.approx(0.5 * 0.2)
    assert (lc["requests"], lc["cost_usd"]) == (1, pytest.approx(0.002))
    # llama3 has no price: the decorated call's tokens are counted but not priced
    assert ls["tokens_without_price"] == {"input": 7, "output": 3}
    assert ls["cost_usd"] == pytest.approx(0.01)
    assert qs["time_to_first_token_seconds"]["p95"] == pytest.approx(0.05 + 0.05 * 0.9, rel=1e-6)
    assert qs["hosts"] and qs["hosts"][0]["host"]

    # The security counters of the same app.
    def auth_failures():
        body = get(
            stack,
            token,
            "/api/v1/monitoring/query",
            metric="http_auth_failures_total",
            agg="last",
            by="organization",
        )
        return {
            s["labels"]["organization"]: s["points"][-1][1] for s in body.get("data", {}).get("series", [])
        }

    assert wait_for(auth_failures, lambda v: v.get("swag") == 2) == {"swag": 2.0}

    # The request-level detail is one log record per inference, found by its request id.
    record = get(stack, token, "/api/v1/logs/requests/req-inf-qwen2.5:7b-sci-error")
    assert "u-1" in json.dumps(record)
