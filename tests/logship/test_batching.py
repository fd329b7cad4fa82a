"""The SDK batches log records into few datagrams; the agent's endpoint unpacks the batches."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from agent.logs.endpoint import LocalEndpoint
from agent.sdk import AgentClient, AgentHandler, protocol

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def receiver():
    """A bound datagram socket that the test reads itself (nothing reads it meanwhile)."""
    directory = tempfile.mkdtemp(prefix="fw-", dir="/tmp")
    path = os.path.join(directory, "agent.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    yield path, sock
    sock.close()
    shutil.rmtree(directory, ignore_errors=True)


def drain(sock: socket.socket) -> list[dict]:
    messages = []
    sock.settimeout(0.3)
    try:
        while True:
            messages.append(protocol.unpack(sock.recv(1 << 20)))
    except TimeoutError:
        return messages


def logger_to(client: AgentClient, name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers[:] = [AgentHandler("svc", client=client)]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def queue_limit() -> int:
    with open("/proc/sys/net/unix/max_dgram_qlen") as handle:
        return int(handle.read())


def test_a_burst_larger_than_the_kernel_queue_arrives_whole_in_a_few_datagrams(receiver):
    path, sock = receiver
    client = AgentClient(path, batch_interval=60)  # only size and flush() send
    log = logger_to(client, "batch.burst")
    count = 500  # 50 times Linux's default queue of 10 datagrams
    for index in range(count):
        log.info("event %d", index, extra={"user_id": index})
    client.flush()
    messages = drain(sock)
    assert client.stats()["dropped"] == 0 and client.stats()["sent"] == count
    assert len(messages) <= min(10, queue_limit())
    assert {m["t"] for m in messages} == {protocol.LOGS}
    records = [r for m in messages for r in m["r"]]
    assert [r["message"] for r in records] == [f"event {i}" for i in range(count)]
    assert records[7]["attrs"]["user_id"] == 7 and records[7]["service"] == "svc"


def test_one_record_per_datagram_loses_the_same_burst(receiver):
    """Why batching: the kernel refuses datagrams beyond net.unix.max_dgram_qlen."""
    path, sock = receiver
    client = AgentClient(path, batch_interval=0)
    log = logger_to(client, "batch.single")
    count = 2 * queue_limit() + 50
    for index in range(count):
        log.info("event %d", index)
    assert client.stats()["dropped"] > 0
    assert client.stats()["sent"] + client.stats()["dropped"] == count
    assert len(drain(sock)) == client.stats()["sent"]


def test_the_background_thread_sends_a_partial_batch_within_the_interval(receiver):
    path, sock = receiver
    client = AgentClient(path, batch_interval=0.05)
    start = time.monotonic()
    logger_to(client, "batch.timer").warning("lonely record")
    message = protocol.unpack(sock.recv(1 << 20))
    assert time.monotonic() - start < 1.5
    assert message["t"] == protocol.LOGS and message["r"][0]["message"] == "lonely record"
    client.close()


def test_records_still_buffered_at_exit_are_sent(receiver):
    path, sock = receiver
    code = (
        "import logging\n"
        "from agent.sdk import AgentClient, AgentHandler\n"
        f"client = AgentClient({path!r}, batch_interval=60)\n"
        "log = logging.getLogger('app')\n"
        "log.addHandler(AgentHandler('svc', client=client))\n"
        "log.warning('last words')\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
    message = protocol.unpack(sock.recv(1 << 20))
    assert [r["message"] for r in message["r"]] == ["last words"]


def test_endpoint_keeps_the_good_records_of_a_batch_and_counts_the_bad_one():
    received = []
    endpoint = LocalEndpoint("/unused", received.append, lambda series: None)
    good = {"ts": 1.0, "level": "INFO", "message": "ok"}
    data = protocol.pack_logs(
        [protocol.pack(good), protocol.pack({"ts": "yesterday", "message": "bad"}), protocol.pack(good)]
    )
    endpoint.handle(data)
    endpoint.handle(protocol.pack({"t": protocol.LOGS, "r": "not a list"}))
    stats = endpoint.stats()
    assert [r["message"] for r in received] == ["ok", "ok"]
    assert (stats["messages"], stats["logs"], stats["rejected"]) == (2, 2, 2)
    assert "'r' list" in stats["last_rejection"]


@pytest.fixture
def endpoint():
    """A real LocalEndpoint collecting what it decodes."""
    directory = tempfile.mkdtemp(prefix="fw-", dir="/tmp")
    received: list[dict] = []
    ep = LocalEndpoint(os.path.join(directory, "agent.sock"), received.append, lambda series: None)
    ep.start()
    yield ep, received
    ep.stop()
    shutil.rmtree(directory, ignore_errors=True)


def test_records_from_one_thread_arrive_in_order_while_the_flusher_races(endpoint):
    ep, received = endpoint
    client = AgentClient(ep.path, batch_interval=0.001, batch_bytes=2048)
    for index in range(20_000):
        client.send_log({"ts": 1.0, "level": "INFO", "message": str(index)})
        if index % 500 == 499:
            time.sleep(0.002)  # let the endpoint read; the kernel queue holds 10 datagrams
    client.close()
    ep.stop()
    stats = client.stats()
    assert stats["sent"] + stats["dropped"] == 20_000
    numbers = [int(r["message"]) for r in received]
    assert len(numbers) == stats["sent"] and numbers == sorted(numbers)


def test_a_map_key_that_is_not_text_costs_neither_its_record_nor_its_batch(endpoint):
    ep, received = endpoint
    client = AgentClient(ep.path, batch_interval=60)
    log = logger_to(client, "batch.keys")
    log.info("by status", extra={"by_status": {200: 5, 404: 1}})
    client.send_log({"ts": 2.0, "level": "INFO", "message": "raw", "attrs": {"n": {1: "one"}}})
    log.info("after")
    client.flush()
    ep.stop()
    assert [r["message"] for r in received] == ["by status", "raw", "after"]
    assert received[0]["attrs"]["by_status"] == {"200": 5, "404": 1}
    assert received[1]["attrs"]["n"] == {"1": "one"}
    assert ep.stats()["rejected"] == 0


def test_stop_decodes_every_datagram_the_kernel_accepted(endpoint):
    ep, received = endpoint
    client = AgentClient(ep.path, batch_interval=0)
    for index in range(8):  # under the kernel's queue of 10: all accepted at once
        client.send_log({"ts": 1.0, "level": "INFO", "message": str(index)})
    ep.stop()
    assert client.stats()["sent"] == 8
    assert [r["message"] for r in received] == [str(i) for i in range(8)]
    assert client.send_log({"ts": 1.0, "level": "INFO", "message": "late"}) is False  # ENOENT: counted
    assert client.stats()["dropped"] == 1


def test_a_client_dropped_without_close_is_freed_with_its_thread(receiver):
    import gc
    import weakref

    path, _ = receiver
    client = AgentClient(path, batch_interval=0.02)
    thread = client._flusher
    ref = weakref.ref(client)
    client.send_log({"ts": 1.0, "level": "INFO", "message": "x"})
    del client
    gc.collect()
    assert ref() is None
    thread.join(timeout=2)
    assert not thread.is_alive()


def test_a_forked_child_sends_its_own_records_and_not_the_parents(receiver):
    path, sock = receiver
    client = AgentClient(path, batch_interval=60)
    client.send_log({"ts": 1.0, "level": "INFO", "message": "parent"})
    pid = os.fork()
    if pid == 0:  # the child: log, flush, leave without running the parent's cleanup
        try:
            client.send_log({"ts": 1.0, "level": "INFO", "message": "child"})
            client.flush()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    client.flush()
    messages = sorted(r["message"] for m in drain(sock) for r in m["r"])
    assert messages == ["child", "parent"]


def test_a_record_logged_after_close_is_counted_as_dropped_at_once(receiver):
    path, sock = receiver
    client = AgentClient(path, batch_interval=60)
    client.send_log({"ts": 1.0, "level": "INFO", "message": "before"})
    client.close()
    assert client.send_log({"ts": 1.0, "level": "INFO", "message": "after"}) is False
    assert client.stats() == {"sent": 1, "dropped": 1, "truncated": 0, "fallback_written": 0}
    assert [r["message"] for m in drain(sock) for r in m["r"]] == ["before"]
