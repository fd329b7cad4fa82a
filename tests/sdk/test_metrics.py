"""ApiMetrics: the contract's series names, cumulative buckets, status classes, cardinality cap."""

from __future__ import annotations

import os

import pytest

from agent.sdk import ApiMetrics
from shared.wire import decode_batch, encode_batch


def by_key(series):
    """{(name, labels without instance): value}."""
    return {
        (s["name"], tuple(sorted((k, v) for k, v in s["labels"].items() if k != "instance"))): s["points"][0][
            1
        ]
        for s in series
    }


def labels(**kw):
    return tuple(sorted({"service": "shop", **kw}.items()))


def test_requests_are_counted_per_route_method_and_status_with_cumulative_histogram():
    metrics = ApiMetrics("shop", buckets=(0.01, 0.1, 1.0))
    metrics.observe("/items/{id}", "GET", 200, 0.005, 0, 100)
    metrics.observe("/items/{id}", "GET", 200, 0.05, 0, 200)
    metrics.observe("/items/{id}", "GET", 503, 2.0, 10, 5)
    got = by_key(metrics.series(ts=1000.0))
    route = {"route": "/items/{id}", "method": "GET"}
    ok = {**route, "status_class": "2xx"}
    failed = {**route, "status_class": "5xx"}
    assert got[("http_requests_total", labels(**route, status="200"))] == 2
    assert got[("http_requests_total", labels(**route, status="503"))] == 1
    assert got[("http_request_errors_total", labels(**route))] == 1
    # the latency histogram, _sum and _count are per status class
    assert got[("http_request_duration_seconds_bucket", labels(**ok, le="0.01"))] == 1
    assert got[("http_request_duration_seconds_bucket", labels(**ok, le="0.1"))] == 2
    assert got[("http_request_duration_seconds_bucket", labels(**ok, le="1.0"))] == 2
    assert got[("http_request_duration_seconds_bucket", labels(**ok, le="+Inf"))] == 2
    assert got[("http_request_duration_seconds_bucket", labels(**failed, le="1.0"))] == 0
    assert got[("http_request_duration_seconds_bucket", labels(**failed, le="+Inf"))] == 1
    assert got[("http_request_duration_seconds_count", labels(**ok))] == 2
    assert got[("http_request_duration_seconds_count", labels(**failed))] == 1
    assert abs(got[("http_request_duration_seconds_sum", labels(**ok))] - 0.055) < 1e-9
    assert got[("http_request_duration_seconds_sum", labels(**failed))] == 2.0
    assert got[("http_request_duration_seconds_max", labels(**ok))] == 0.05
    assert got[("http_request_duration_seconds_max", labels(**failed))] == 2.0
    assert got[("http_request_size_bytes_sum", labels(**route))] == 10
    assert got[("http_response_size_bytes_sum", labels(**route))] == 305


def test_counters_are_cumulative_across_snapshots_and_typed_counter():
    metrics = ApiMetrics("shop")
    metrics.observe("/a", "POST", 201, 0.2, 1, 1)
    first = by_key(metrics.series())
    metrics.observe("/a", "POST", 201, 0.2, 1, 1)
    second = metrics.series()
    key = ("http_requests_total", labels(route="/a", method="POST", status="201"))
    assert first[key] == 1
    assert by_key(second)[key] == 2
    types = {s["name"]: s["type"] for s in second}
    assert types.pop("http_request_duration_seconds_max") == "gauge"
    assert set(types.values()) == {"counter"}


def test_series_pass_the_wire_format_validation():
    metrics = ApiMetrics("shop")
    metrics.observe("/a", "GET", 404, 0.001, 0, 0)
    data = encode_batch(
        kind="metrics",
        agent_id="a",
        host="h",
        agent_version="1",
        epoch=1,
        seq=1,
        sent_at=1.0,
        series=metrics.series(),
    )
    batch = decode_batch(data)
    assert {s.name for s in batch.series} >= {"http_requests_total", "http_request_duration_seconds_bucket"}


def test_routes_beyond_the_cap_are_folded_into_other_and_counted():
    metrics = ApiMetrics("shop", max_endpoints=3)
    for index in range(10):
        metrics.observe(f"/r{index}", "GET", 200, 0.001, 0, 0)
    routes = {s["labels"]["route"] for s in metrics.series()}
    assert routes == {"/r0", "/r1", "/r2", "__other__"}
    assert metrics.folded_requests == 7
    got = by_key(metrics.series())
    assert got[("http_requests_total", labels(route="__other__", method="GET", status="200"))] == 7


def test_every_series_has_the_process_instance_label_and_instances_differ():
    first, second = ApiMetrics("shop"), ApiMetrics("shop")
    for metrics in (first, second):
        metrics.observe("/a", "GET", 200, 0.01, 0, 0)
        metrics.observe("/b", "POST", 500, 0.01, 0, 0)
    ids = [{s["labels"].get("instance") for s in m.series()} for m in (first, second)]
    assert ids == [{first.instance}, {second.instance}]
    assert first.instance != second.instance
    assert len(first.instance) == 12 and int(first.instance, 16) >= 0
    assert ApiMetrics("shop", instance="w1").instance == "w1"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_is_a_new_instance_starting_from_zero():
    # gunicorn --preload: the app (and its ApiMetrics) is made in the master, then forked.
    metrics = ApiMetrics("shop")
    metrics.observe("/a", "GET", 200, 0.01, 0, 0)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            metrics.observe("/a", "GET", 200, 0.01, 0, 0)
            got = by_key(metrics.series())[
                ("http_requests_total", labels(route="/a", method="GET", status="200"))
            ]
            os.write(write_end, f"{metrics.instance} {got}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    child_instance, child_count = os.read(read_end, 100).decode().split()
    os.close(read_end)
    assert child_instance != metrics.instance
    assert float(child_count) == 1  # the parent's request is not counted again in the child
    assert (
        by_key(metrics.series())[("http_requests_total", labels(route="/a", method="GET", status="200"))] == 1
    )
