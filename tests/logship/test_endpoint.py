"""The agent's Unix socket endpoint with the SDK in another process, and the SDK with the agent down."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from agent.logs import LogShipConfig, LogShipper
from agent.sdk import AgentClient, AgentHandler
from agent.sdk.protocol import pack
from shared.config import ConfigError
from shared.streams import stream_key
from shared.wire import decode_batch, encode_batch
from tests.logship.conftest import AGENT

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def short_dir():
    """A short directory for sockets (a Unix socket path is limited to 107 bytes)."""
    path = tempfile.mkdtemp(prefix="fw-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def shipper(short_dir, redis_client):
    """A LogShipper whose sender XADDs batches to the real Redis streams, as the transport does."""
    config = LogShipConfig.from_dict(
        {"socket_path": os.path.join(short_dir, "agent.sock"), "flush_interval": 0.2, "poll_interval": 0.1},
        os.path.join(short_dir, "state"),
    )

    def sender(kind):
        return lambda data: redis_client.xadd(stream_key(kind), {"b": data})

    ship = LogShipper(config, AGENT, send_logs=sender("logs"), send_metrics=sender("metrics"))
    ship.start()
    yield ship
    ship.stop()


def stream_batches(redis_client, kind):
    return [decode_batch(fields[b"b"]) for _, fields in redis_client.xrange(stream_key(kind))]


def test_sdk_in_another_process_reaches_redis_as_logs_and_metrics_batches(shipper, redis_client):
    env = {**os.environ, "FLEETWATCH_AGENT_SOCKET": shipper.config.socket_path, "PYTHONPATH": ROOT}
    result = subprocess.run(
        [sys.executable, "-m", "tests.logship.sdk_app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    client_stats = json.loads(result.stdout)
    assert client_stats["dropped"] == 0 and client_stats["sent"] >= 6
    shipper.stop()  # final flush

    logs = [record for batch in stream_batches(redis_client, "logs") for record in batch.logs]
    by_message = {record["message"]: record for record in logs}
    started = by_message["started"]
    assert started["service"] == "billing"
    assert started["logger"] == "billing.main"
    assert started["level"] == "INFO"
    assert started["attrs"]["tenant"] == "acme"
    assert started["attrs"]["password"] == "[REDACTED]"
    assert started["attrs"]["version"] == "1.2"
    failed = by_message["lookup failed"]
    assert failed["level"] == "ERROR"
    assert "KeyError" in failed["attrs"]["exception"] and "abc123" not in failed["attrs"]["exception"]
    charging = [r for r in logs if r["message"] == "charging"]
    assert sorted(r["request_id"] for r in charging) == ["req1", "req2"]
    assert all(r["attrs"]["card"] == "[REDACTED]" and len(r["trace_id"]) == 32 for r in charging)
    completed = [r for r in logs if r["message"] == "Request completed"]
    assert [r["attrs"]["route"] for r in completed] == ["/invoices/{id}", "/invoices/{id}"]

    (metrics,) = stream_batches(redis_client, "metrics")
    assert metrics.agent_id == AGENT.agent_id + "/apps" and metrics.host == AGENT.host
    totals = [s for s in metrics.series if s.name == "http_requests_total"]
    instance = totals[0].labels.get("instance", "")
    assert len(instance) == 12  # the SDK process's own series
    assert [(s.labels, s.points[0][1], s.type) for s in totals] == [
        (
            {
                "service": "billing",
                "instance": instance,
                "route": "/invoices/{id}",
                "method": "GET",
                "status": "200",
            },
            2.0,
            "counter",
        )
    ]
    assert {s.labels["instance"] for s in metrics.series} == {instance}
    names = {s.name for s in metrics.series}
    assert "http_request_duration_seconds_bucket" in names and "http_response_size_bytes_sum" in names


def test_bad_messages_are_rejected_with_a_reason_and_good_ones_still_pass(shipper, redis_client):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = shipper.config.socket_path
    sock.sendto(b"\xc1 not msgpack", path)
    sock.sendto(pack({"t": "log", "r": {"ts": "yesterday", "level": "INFO", "message": "x"}}), path)
    sock.sendto(pack({"t": "trace", "r": {}}), path)
    sock.sendto(pack({"t": "metrics", "series": [{"name": "bad name", "points": [[1, 2]]}]}), path)
    sock.sendto(
        pack({"t": "log", "r": {"ts": time.time(), "level": "warn", "message": "good", "x": 1}}), path
    )
    sock.close()
    deadline = time.monotonic() + 5
    while shipper.endpoint.stats()["messages"] < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    stats = shipper.endpoint.stats()
    assert stats["rejected"] == 4
    assert stats["logs"] == 1
    shipper.stop()
    (batch,) = stream_batches(redis_client, "logs")
    assert batch.logs[0]["message"] == "good"
    assert batch.logs[0]["level"] == "WARNING"
    assert batch.logs[0]["attrs"] == {"x": 1}


def test_sdk_with_agent_down_drops_and_counts_without_raising(short_dir):
    client = AgentClient(socket_path=os.path.join(short_dir, "no-agent.sock"))
    handler = AgentHandler("svc", client=client)
    logger = logging.getLogger("sdk.down")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        start = time.perf_counter()
        for index in range(2000):
            logger.info("event %d", index)
        elapsed = time.perf_counter() - start
    finally:
        logger.removeHandler(handler)
    client.flush()  # the last partial batch
    print(
        f"2000 log calls with the agent down took {elapsed * 1e3:.1f} ms ({elapsed / 2000 * 1e6:.1f} us/call)"
    )
    assert client.stats() == {"sent": 0, "dropped": 2000, "truncated": 0, "fallback_written": 0}
    assert handler.errors == 0
    assert (
        client.send_metrics([{"name": "m", "type": "gauge", "labels": {}, "points": [[1.0, 1.0]]}]) is False
    )
    assert client.dropped == 2001


def test_sdk_drops_and_counts_when_the_agent_is_not_reading(short_dir):
    path = os.path.join(short_dir, "stuck.sock")
    stuck = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.bind(path)  # bound but never read: its queue fills up
    record = {"ts": time.time(), "level": "INFO", "message": "m" * 500}
    batched = AgentClient(socket_path=path)
    results = [batched.send_log(record) for _ in range(5000)]
    batched.flush()
    assert all(results)  # queued in the app: a log call never waits or fails
    assert batched.dropped > 0  # whole batches the full queue refused, counted per record
    assert batched.sent + batched.dropped == 5000
    unbatched = AgentClient(socket_path=path, batch_interval=0)
    results = [unbatched.send_log(record) for _ in range(1000)]
    stuck.close()
    assert unbatched.dropped > 0
    assert unbatched.sent + unbatched.dropped == 1000
    assert results.count(True) == unbatched.sent


def test_sdk_with_agent_down_writes_the_fallback_file_that_the_tailer_ships(short_dir, tail):
    fallback = tail.path("app-fallback.log")
    client = AgentClient(socket_path=os.path.join(short_dir, "no-agent.sock"), fallback_path=fallback)
    handler = AgentHandler("svc", client=client)
    record = logging.LogRecord("fb", logging.WARNING, __file__, 1, "disk %s", ("full",), None)
    handler.handle(record)
    assert client.stats()["fallback_written"] == 0  # still in the app's batch
    client.flush()
    assert client.stats()["fallback_written"] == 1 and client.dropped == 0
    tailer = tail.tailer([{"paths": [fallback], "format": "json"}])
    tailer.poll()
    (shipped,) = tail.send.unique_records()
    assert (shipped["message"], shipped["level"], shipped["service"]) == ("disk full", "WARNING", "svc")
    assert shipped["ts"] == pytest.approx(record.created, abs=1e-3)


def test_fallback_records_keep_their_attributes_at_the_top_of_attrs(short_dir, tail):
    fallback = tail.path("app-fallback.log")
    client = AgentClient(socket_path=os.path.join(short_dir, "no-agent.sock"), fallback_path=fallback)
    handler = AgentHandler("svc", client=client)
    record = logging.LogRecord("fb", logging.ERROR, __file__, 1, "payment failed", (), None)
    record.user_id = 42
    record.order = {"id": "o-1", "items": 3}
    handler.handle(record)
    client.flush()
    with open(fallback, encoding="utf-8") as handle:
        written = json.loads(handle.read())
    assert written["attrs"]["user_id"] == 42  # the fallback line is in the record shape
    tailer = tail.tailer([{"paths": [fallback], "format": "json"}])
    tailer.poll()
    (shipped,) = tail.send.unique_records()
    assert "attrs" not in shipped["attrs"]
    assert shipped["attrs"]["user_id"] == 42
    assert shipped["attrs"]["order"] == {"id": "o-1", "items": 3}
    assert shipped["attrs"]["file"] == fallback
    assert (shipped["message"], shipped["level"], shipped["service"], shipped["logger"]) == (
        "payment failed",
        "ERROR",
        "svc",
        "fb",
    )


def test_oversized_record_is_cut_to_fit_one_datagram(short_dir, shipper, redis_client):
    client = AgentClient(socket_path=shipper.config.socket_path)
    assert client.send_log(
        {"ts": time.time(), "level": "INFO", "message": "z" * 500_000, "attrs": {"k": "v"}}
    )
    assert client.truncated == 1 and client.dropped == 0
    deadline = time.monotonic() + 5
    while shipper.endpoint.stats()["logs"] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    shipper.stop()
    (batch,) = stream_batches(redis_client, "logs")
    (record,) = batch.logs
    assert record["message"] == "z" * (client.batch_bytes // 2)
    assert record["attrs"]["truncated"] is True
    assert "k" in record["attrs"]["truncated_attrs"]


def test_health_series_expose_rejections_and_pass_wire_validation(shipper):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.sendto(b"\xc1", shipper.config.socket_path)
    sock.close()
    deadline = time.monotonic() + 5
    while shipper.endpoint.stats()["rejected"] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    series = shipper.health_series(ts=1000.0)
    data = encode_batch(
        kind="metrics", agent_id="a", host="h", agent_version="1", epoch=1, seq=1, sent_at=1.0, series=series
    )
    decoded = {(s.name, tuple(s.labels.items())): s.points[0][1] for s in decode_batch(data).series}
    assert decoded[("agent_logs_rejected_total", (("source", "socket"),))] == 1.0
    assert decoded[("agent_logs_dropped_total", (("source", "socket"),))] == 0.0


def test_socket_path_that_cannot_be_bound_stops_startup_naming_the_setting(short_dir):
    blocker = os.path.join(short_dir, "file")
    with open(blocker, "w") as handle:
        handle.write("not a directory")
    config = LogShipConfig.from_dict({"socket_path": os.path.join(blocker, "agent.sock")}, short_dir)
    ship = LogShipper(config, AGENT, send_logs=lambda data: None)
    with pytest.raises(ConfigError, match=r"logs\.socket_path"):
        ship.start()


def test_socket_path_longer_than_the_unix_limit_is_refused_at_load(short_dir):
    with pytest.raises(ConfigError, match=r"logs\.socket_path=.*longer than 107 bytes"):
        LogShipConfig.from_dict({"socket_path": "/tmp/" + "s" * 120}, short_dir)


def test_damaged_state_file_stops_startup_with_what_to_do(short_dir):
    with open(os.path.join(short_dir, "logs-state.json"), "w") as handle:
        handle.write("{not json")
    config = LogShipConfig.from_dict({"socket_enabled": False}, short_dir)
    with pytest.raises(ConfigError, match=r"logs-state\.json cannot be read .*move it away"):
        LogShipper(config, AGENT, send_logs=lambda data: None)


def test_running_shipper_tails_files_in_the_background_into_redis(short_dir, redis_client):
    log_path = os.path.join(short_dir, "app.log")
    config = LogShipConfig.from_dict(
        {"socket_enabled": False, "poll_interval": 0.05, "files": [{"paths": [log_path], "service": "web"}]},
        os.path.join(short_dir, "state"),
    )
    ship = LogShipper(
        config, AGENT, send_logs=lambda data: redis_client.xadd(stream_key("logs"), {"b": data})
    )
    ship.start()
    try:
        with open(log_path, "a") as handle:
            for index in range(3):
                handle.write(
                    json.dumps({"ts": time.time(), "level": "INFO", "message": f"bg-{index}"}) + "\n"
                )
        deadline = time.monotonic() + 10
        while redis_client.xlen(stream_key("logs")) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        ship.stop()
    records = [r for batch in stream_batches(redis_client, "logs") for r in batch.logs]
    assert [r["message"] for r in records] == ["bg-0", "bg-1", "bg-2"]
    assert {r["service"] for r in records} == {"web"}
