"""GET /federate exposes the latest samples; a real Prometheus federates from it."""

from __future__ import annotations

import time
from urllib.parse import urlparse

import pytest
from django.contrib.auth.models import User
from prometheus_client.parser import text_string_to_metric_families

from tests.members import issue_token, member

from .real_prometheus import get_json, running_prometheus


@pytest.fixture
def recent(store):
    now = time.time()
    load = store.series("fw_load", host="db-1", disk='sd"a')
    store.samples(load, [(now - 120, 1.0), (now - 5, 2.5)])
    old = store.series("fw_load", host="db-2")
    store.samples(old, [(now - 900, 7.0)])  # older than the lookback: not exposed
    sent = store.series("fw_bytes_total", "counter", host="db-1")
    store.samples(sent, [(now - 5, 1e21)])
    return now


def test_federate_exposes_the_latest_sample_of_matching_series(api, recent):
    response = api.get("/federate", {"match[]": ['fw_load{host=~"db-.*"}', "fw_bytes_total"]})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(response.content.decode())}
    assert [(s.labels, s.value) for s in families["fw_load"].samples] == [
        ({"disk": 'sd"a', "host": "db-1"}, 2.5)
    ]
    assert families["fw_load"].type == "gauge"
    assert families["fw_bytes"].type == "counter"
    assert families["fw_bytes"].samples[0].value == 1e21
    assert abs(families["fw_load"].samples[0].timestamp - (recent - 5)) < 0.01


def test_federate_needs_a_match(api, recent):
    response = api.get("/federate")
    assert response.status_code == 400
    assert "match[]" in response.json()["error"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_real_prometheus_federates_fleetwatch_hosts(live_server, store, tmp_path):
    now = time.time()
    store.samples(store.series("fw_load", host="db-1"), [(now - 3, 4.25)])
    user = User.objects.create_user("federator", password="federate-password-1")
    token = issue_token(member(user, "viewer"), "viewer")
    config = f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: fleetwatch
    honor_labels: true
    metrics_path: /federate
    params: {{"match[]": ['{{__name__=~"fw_.*"}}']}}
    authorization: {{type: Token, credentials: {token}}}
    static_configs: [{{targets: ["{urlparse(live_server.url).netloc.replace("localhost", "127.0.0.1")}"]}}]
"""
    with running_prometheus(tmp_path, config) as url:
        deadline = time.monotonic() + 30
        result = []
        while not result and time.monotonic() < deadline:
            result = get_json(url, "/api/v1/query", {"query": "fw_load"})["data"]["result"]
            time.sleep(0.2)
        up = get_json(url, "/api/v1/query", {"query": 'up{job="fleetwatch"}'})["data"]["result"]
    assert up and up[0]["value"][1] == "1"
    assert result and result[0]["metric"]["host"] == "db-1"
    assert result[0]["value"][1] == "4.25"
