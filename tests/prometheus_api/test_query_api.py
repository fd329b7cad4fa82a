"""The PromQL HTTP API answers in Prometheus' shapes, over samples in Postgres."""

from __future__ import annotations

import pytest


@pytest.fixture
def cpu(store, now_s):
    """Two hosts' gauges and a counter with a reset, a sample every 15 s for 20 minutes."""
    for host, base in (("web-1", 10.0), ("web-2", 20.0)):
        gauge = store.series("cpu_percent", host=host, env="prod")
        store.samples(gauge, [(now_s - 1200 + 15 * i + 7, base + i % 4) for i in range(80)])
    counter = store.series("requests_total", "counter", host="web-1", code="200")
    values = [10.0 * i for i in range(40)] + [5.0 * i for i in range(40)]
    store.samples(counter, [(now_s - 1200 + 15 * i + 7, v) for i, v in enumerate(values)])
    return now_s


def query(api, text, at):
    response = api.get("/prometheus/api/v1/query", {"query": text, "time": at})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "success"
    return body["data"]


def test_instant_selector_returns_the_latest_sample_of_each_series(api, cpu):
    data = query(api, 'cpu_percent{env="prod"}', cpu)
    assert data["resultType"] == "vector"
    assert [(r["metric"]["host"], r["value"]) for r in data["result"]] == [
        ("web-1", [cpu, "13"]),
        ("web-2", [cpu, "23"]),
    ]
    assert data["result"][0]["metric"]["__name__"] == "cpu_percent"


def test_sum_by_and_rate(api, cpu):
    data = query(api, "sum by (env) (cpu_percent)", cpu)
    assert data["result"] == [{"metric": {"env": "prod"}, "value": [cpu, "36"]}]
    data = query(api, "rate(requests_total[5m])", cpu)
    assert len(data["result"]) == 1
    assert "__name__" not in data["result"][0]["metric"]
    assert float(data["result"][0]["value"][1]) == pytest.approx(5.0 / 15, rel=0.01)


def test_range_query_returns_a_matrix_with_a_point_per_step(api, cpu):
    response = api.post(
        "/prometheus/api/v1/query_range",
        {"query": "cpu_percent * 2", "start": cpu - 300, "end": cpu, "step": "30s"},
    )
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["resultType"] == "matrix"
    assert len(data["result"]) == 2
    assert len(data["result"][0]["values"]) == 11


def test_unsupported_function_is_bad_data_naming_it(api, cpu):
    response = api.get("/prometheus/api/v1/query", {"query": "holt_winters(cpu_percent[5m], 0.5, 0.5)"})
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == "error"
    assert body["errorType"] == "bad_data"
    assert "holt_winters" in body["error"]
