"""Real Prometheus tools as clients: remote_write into fleetwatch, promtool querying it."""

from __future__ import annotations

import subprocess
import time

import pytest
from django.contrib.auth.models import User

from alerting_worker.ingest.consumer import StreamConsumer
from alerting_worker.ingest.metrics_handler import CACHE, MetricsHandler
from shared import streams
from tests.members import issue_token, member

from .real_prometheus import PROMTOOL, free_port, running_prometheus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_prometheus_remote_writes_into_fleetwatch_and_samples_are_queryable(
    live_server, redis_client, tmp_path
):
    user = User.objects.create_user("prom-writer", password="writer-password-1")
    token = issue_token(member(user, "operator"), "operator")
    port = free_port()
    config = f"""
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: self
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
remote_write:
  - url: {live_server.url}/prometheus/api/v1/write
    authorization: {{type: Token, credentials: {token}}}
    queue_config: {{batch_send_deadline: 1s, min_backoff: 100ms, max_backoff: 1s}}
"""
    CACHE.clear()
    consumer = StreamConsumer(redis_client, streams.METRICS, MetricsHandler(), consumer="t", block_ms=0)
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    found = []
    with running_prometheus(tmp_path, config, port):
        deadline = time.monotonic() + 90
        while not found and time.monotonic() < deadline:
            consumer.drain(max_seconds=5)
            body = client.get("/prometheus/api/v1/query", {"query": 'up{job="self"}'}).json()
            found = body["data"]["result"]
            if not found:
                time.sleep(0.5)
    CACHE.clear()
    assert found, "no sample of the Prometheus server's own scrape reached fleetwatch"
    assert found[0]["metric"]["instance"] == f"127.0.0.1:{port}"
    assert found[0]["metric"]["host"] == "127.0.0.1"
    assert found[0]["value"][1] == "1"
    # Its counters arrive as counters and rate() works on them.
    body = client.get(
        "/prometheus/api/v1/query", {"query": "prometheus_http_requests_total", "time": time.time()}
    ).json()
    assert body["data"]["result"]


@pytest.fixture
def promtool_data(store, now_s):
    gauge = store.series("fw_load", host="db-1")
    store.samples(gauge, [(now_s - 600 + 15 * i, 1.5 + i) for i in range(41)])
    return now_s


def test_promtool_queries_fleetwatch_as_a_prometheus_server(live_server, promtool_data):
    member(User.objects.create_user("promtool", password="tool-password-1"), "viewer")
    server = live_server.url.replace("http://", "http://promtool:tool-password-1@") + "/prometheus"
    now_s = promtool_data
    instant = subprocess.run(
        [PROMTOOL, "query", "instant", f"--time={now_s}", server, "fw_load * 2"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert instant.returncode == 0, instant.stderr
    assert '{host="db-1"} => 83 @[' in instant.stdout
    ranged = subprocess.run(
        [
            PROMTOOL,
            "query",
            "range",
            f"--start={now_s - 60}",
            f"--end={now_s}",
            "--step=30s",
            server,
            "max_over_time(fw_load[1m])",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert ranged.returncode == 0, ranged.stderr
    assert '{host="db-1"} =>' in ranged.stdout
    assert f"41.5 @[{now_s}]" in ranged.stdout
    refused = subprocess.run(
        [PROMTOOL, "query", "instant", server, "holt_winters(fw_load[5m], 0.5, 0.5)"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode != 0
    assert "holt_winters" in refused.stderr
