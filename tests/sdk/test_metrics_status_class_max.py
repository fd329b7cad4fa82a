"""ApiMetrics: status_class labels on the latency histogram, and the per-flush max gauge."""

from __future__ import annotations

import socket

import pytest

from agent.sdk import AgentClient, ApiMetrics, MetricsFlusher, protocol
from agent.sdk.metrics import status_class

MAX = "http_request_duration_seconds_max"


def maxima(series):
    return {s["labels"]["status_class"]: s["points"][0][1] for s in series if s["name"] == MAX}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (101, "1xx"),
        (200, "2xx"),
        (299, "2xx"),
        (302, "3xx"),
        (404, "4xx"),
        (503, "5xx"),
        (0, "other"),
        (600, "other"),
    ],
)
def test_status_class(status, expected):
    assert status_class(status) == expected


def test_histogram_series_carry_the_status_class_and_errors_and_sizes_do_not():
    metrics = ApiMetrics("shop", buckets=(0.1,))
    metrics.observe("/a", "GET", 200, 0.01, 0, 0)
    metrics.observe("/a", "GET", 404, 0.01, 0, 0)
    metrics.observe("/a", "GET", 500, 0.01, 0, 0)
    classes: dict[str, set[str]] = {}
    for s in metrics.series():
        classes.setdefault(s["name"], set()).add(s["labels"].get("status_class", "-"))
    for name in (
        "http_request_duration_seconds_bucket",
        "http_request_duration_seconds_sum",
        "http_request_duration_seconds_count",
        MAX,
    ):
        assert classes[name] == {"2xx", "4xx", "5xx"}, name
    for name in ("http_requests_total", "http_request_errors_total", "http_request_size_bytes_sum"):
        assert classes[name] == {"-"}, name


def test_max_is_the_longest_request_and_only_a_reset_starts_a_new_interval():
    metrics = ApiMetrics("shop")
    for seconds in (0.2, 3.0, 0.7):
        metrics.observe("/a", "GET", 200, seconds, 0, 0)
    metrics.observe("/a", "GET", 502, 12.5, 0, 0)  # above the last bucket (10 s)
    assert maxima(metrics.series()) == {"2xx": 3.0, "5xx": 12.5}
    assert maxima(metrics.series(reset_max=True)) == {"2xx": 3.0, "5xx": 12.5}  # series() did not reset
    assert maxima(metrics.series()) == {}  # no request since the reset: no max point at all
    metrics.observe("/a", "GET", 200, 0.05, 0, 0)
    assert maxima(metrics.series()) == {"2xx": 0.05}


@pytest.fixture
def agent_socket(tmp_path):
    path = str(tmp_path / "agent.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    yield path, sock
    sock.close()


def received_maxima(sock) -> dict[str, float]:
    message = protocol.unpack(sock.recv(1 << 20))
    assert message["t"] == protocol.METRICS
    return maxima(message["series"])


def test_the_flusher_resets_the_max_after_each_delivered_flush(agent_socket):
    path, sock = agent_socket
    metrics = ApiMetrics("shop")
    client = AgentClient(socket_path=path)
    flusher = MetricsFlusher(metrics, client, interval=3600)
    try:
        metrics.observe("/a", "GET", 200, 2.0, 0, 0)
        assert flusher.flush() is True
        assert received_maxima(sock) == {"2xx": 2.0}
        metrics.observe("/a", "GET", 200, 0.3, 0, 0)
        assert flusher.flush() is True
        assert received_maxima(sock) == {"2xx": 0.3}  # the 2 s request belonged to the previous interval
    finally:
        client.close()


def test_a_flush_the_agent_did_not_take_keeps_the_max_for_the_next_one(tmp_path):
    metrics = ApiMetrics("shop")
    client = AgentClient(socket_path=str(tmp_path / "nobody-listens.sock"))
    flusher = MetricsFlusher(metrics, client, interval=3600)
    try:
        metrics.observe("/a", "GET", 200, 4.0, 0, 0)
        assert flusher.flush() is False
        metrics.observe("/a", "GET", 200, 0.1, 0, 0)
        assert maxima(metrics.series()) == {"2xx": 4.0}
    finally:
        client.close()
