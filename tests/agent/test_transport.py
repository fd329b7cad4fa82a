"""Delivery to a real Redis stream, spooling while it is down or full, and replay oldest first."""

from __future__ import annotations

import redis

from agent.spool import Spool
from agent.transport import Transport
from shared.streams import PAYLOAD_FIELD
from tests.agent.conftest import PrivateRedis

STREAM = "fwtest:stream:metrics"


def stream_payloads(client: redis.Redis) -> list[bytes]:
    return [fields[PAYLOAD_FIELD] for _, fields in client.xrange(STREAM)]


def make_transport(server: PrivateRedis, tmp_path, cap: int = 1_000_000) -> Transport:
    return Transport(server.url, STREAM, Spool(tmp_path / "spool", cap), replay_budget=5.0)


def test_batch_is_added_to_the_stream_in_field_b(private_redis, tmp_path):
    transport = make_transport(private_redis, tmp_path)
    assert transport.send(b"batch-1") is True
    assert stream_payloads(private_redis.client()) == [b"batch-1"]
    assert transport.batches_sent_total == 1
    assert transport.send_errors_total == 0


def test_batches_sent_while_redis_is_down_are_replayed_oldest_first_before_new_ones(private_redis, tmp_path):
    transport = make_transport(private_redis, tmp_path)
    transport.send(b"a")
    private_redis.stop()
    assert transport.send(b"b") is False
    assert transport.send(b"c") is False
    assert transport.spool.pending_batches == 2
    assert transport.send_errors_total == 2
    private_redis.start()
    assert transport.send(b"d") is True
    assert stream_payloads(private_redis.client()) == [b"a", b"b", b"c", b"d"]
    assert transport.spool.pending_batches == 0
    assert transport.batches_sent_total == 4


def test_flush_delivers_the_spool_and_reports_whether_anything_is_left(private_redis, tmp_path):
    transport = make_transport(private_redis, tmp_path)
    private_redis.stop()
    transport.send(b"x")
    assert transport.flush(0.5) is False
    private_redis.start()
    assert transport.flush() is True
    assert stream_payloads(private_redis.client()) == [b"x"]


def test_redis_out_of_memory_is_treated_like_an_outage(tmp_path):
    server = PrivateRedis(tmp_path, extra=["--maxmemory-policy", "noeviction"])
    server.start()
    try:
        used = server.client().info("memory")["used_memory"]
        server.client().config_set("maxmemory", used + 1_000_000)
        transport = make_transport(server, tmp_path, cap=10_000_000)
        big = b"x" * 200_000
        results = [transport.send(big) for _ in range(12)]
        assert results[0] is True
        assert False in results, "Redis never answered OOM"
        assert transport.spool.pending_batches > 0
        assert transport.send_errors_total > 0
        first_spooled = results.index(False)
        assert len(stream_payloads(server.client())) == first_spooled
        server.client().config_set("maxmemory", "0")
        assert transport.flush() is True
        assert len(stream_payloads(server.client())) == 12
    finally:
        server.kill()


def test_no_maxlen_is_used_so_the_stream_keeps_every_entry(private_redis, tmp_path):
    transport = make_transport(private_redis, tmp_path)
    for n in range(2000):
        transport.send(str(n).encode())
    assert private_redis.client().xlen(STREAM) == 2000
