"""No entry stays pending because of what it holds; an outage dead-letters nothing; recovery is immediate."""

from __future__ import annotations

import logging
import time

import msgpack
import pytest
from django.db import connection

from alerting_worker.ingest import stats
from alerting_worker.ingest.consumer import StreamConsumer, errors_key
from alerting_worker.ingest.failures import DependencyUnavailable
from alerting_worker.ingest.metrics_handler import MetricsHandler
from collector_server.monitoring.models import Host, IngestedBatch
from shared import streams

from .conftest import make_batch, sample_count

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("clean_tables")]


class FailsFor(MetricsHandler):
    """The real handler, raising `error` (built by a callable) for the batches of `agent`."""

    def __init__(self, agent: str, error) -> None:
        super().__init__()
        self.agent = agent
        self.error = error

    def __call__(self, cursor, batches):
        if any(batch.agent_id == self.agent for batch in batches):
            self.error(cursor)
        return super().__call__(cursor, batches)


def consumer(redis_client, handler=None, name="c1", **options) -> StreamConsumer:
    options.setdefault("block_ms", 0)
    return StreamConsumer(
        redis_client, streams.METRICS, handler or MetricsHandler(), consumer=name, **options
    )


def dead_reasons(redis_client) -> list[str]:
    return [f[b"reason"].decode() for _, f in redis_client.xrange(streams.stream_key(streams.DEAD_LETTER))]


def pending(redis_client, stream) -> int:
    return redis_client.xpending(stream, "ingest")["pending"]


def raise_runtime_error(cursor) -> None:
    raise RuntimeError("handler bug")


def test_a_batch_that_breaks_the_handler_is_dead_lettered_alone(redis_client, metrics_stream):
    for i in range(9):
        redis_client.xadd(metrics_stream, {"b": make_batch(agent="good")})
        if i == 4:
            redis_client.xadd(metrics_stream, {"b": make_batch(agent="bad")})
    result = consumer(redis_client, FailsFor("bad", raise_runtime_error)).drain(max_seconds=5)
    assert (result.batches, result.dead_lettered) == (9, 1)
    assert sample_count() == 18
    assert dead_reasons(redis_client) == ["store failed: RuntimeError: handler bug"]
    assert pending(redis_client, metrics_stream) == 0


def statement_timeout(cursor) -> None:
    cursor.execute("SET LOCAL statement_timeout = '20ms'")
    cursor.execute("SELECT pg_sleep(1)")


def test_a_batch_that_times_out_is_held_then_dead_lettered_after_max_deliveries(redis_client, metrics_stream):
    redis_client.xadd(metrics_stream, {"b": make_batch(agent="slow")})
    for _ in range(3):
        redis_client.xadd(metrics_stream, {"b": make_batch(agent="good")})
    c = consumer(redis_client, FailsFor("slow", statement_timeout), max_deliveries=3)
    first = c.drain(max_seconds=5)
    assert (first.batches, first.dead_lettered) == (3, 0)  # the others are stored at once
    assert pending(redis_client, metrics_stream) == 1  # a database error is not blamed on the batch yet
    assert b"QueryCanceled" in next(iter(redis_client.hgetall(errors_key()).values()))
    for _ in range(3):
        c.drain(max_seconds=5)
    assert pending(redis_client, metrics_stream) == 0
    (reason,) = dead_reasons(redis_client)
    assert reason.startswith("delivered 4 times (INGEST_MAX_DELIVERIES=3); last error: QueryCanceled")
    assert stats.read(redis_client)["batches_deadlettered_deliveries"] == 1
    assert redis_client.hlen(errors_key()) == 0


def test_an_entry_delivered_too_often_without_error_is_dead_lettered(redis_client, metrics_stream):
    """A batch that kills its worker each time leaves no error behind; the delivery count ends it."""
    entry = redis_client.xadd(metrics_stream, {"b": make_batch()})
    c = consumer(redis_client, max_deliveries=3)
    c.drain(max_seconds=0)  # creates the group
    redis_client.xreadgroup("ingest", "c1", {metrics_stream: ">"}, count=10)
    for _ in range(3):
        redis_client.xclaim(metrics_stream, "ingest", "c1", 0, [entry])  # each claim is a delivery
    result = c.drain(max_seconds=5)
    assert (result.retried, result.dead_lettered, result.batches) == (1, 1, 0)
    assert "none recorded" in dead_reasons(redis_client)[0]
    assert pending(redis_client, metrics_stream) == 0


def test_entries_read_before_a_postgres_outage_are_retried_by_the_next_drain(redis_client, metrics_stream):
    """Postgres goes away (a closed port) after the chunk was read; nothing waits for the claim idle time."""
    for _ in range(5):
        redis_client.xadd(metrics_stream, {"b": make_batch()})
    real_port = connection.settings_dict["PORT"]

    class PostgresGoesAway(MetricsHandler):
        def prepare(self, batches):
            connection.close()
            connection.settings_dict["PORT"] = "1"  # nothing listens there: connections are refused

    try:
        with pytest.raises(DependencyUnavailable, match="database unreachable"):
            consumer(redis_client, PostgresGoesAway()).drain(max_seconds=5)
        assert pending(redis_client, metrics_stream) == 5
        with pytest.raises(DependencyUnavailable):  # still down: nothing more is read or delivered
            consumer(redis_client).drain(max_seconds=5)
    finally:
        connection.close()
        connection.settings_dict["PORT"] = real_port
    delivered = redis_client.xpending_range(metrics_stream, "ingest", "-", "+", 10)
    assert {item["times_delivered"] for item in delivered} == {1}
    assert dead_reasons(redis_client) == []
    result = consumer(redis_client, claim_idle_ms=3_600_000).drain(max_seconds=5)
    assert (result.retried, result.batches, result.dead_lettered) == (5, 5, 0)
    assert sample_count() == 10
    assert pending(redis_client, metrics_stream) == 0


def test_a_connection_terminated_mid_chunk_is_retried_at_once(redis_client, metrics_stream):
    for _ in range(4):
        redis_client.xadd(metrics_stream, {"b": make_batch()})
    terminated = []

    class BackendTerminated(MetricsHandler):
        def __call__(self, cursor, batches):
            if not terminated:
                terminated.append(True)
                cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
            return super().__call__(cursor, batches)

    result = consumer(redis_client, BackendTerminated()).drain(max_seconds=5)
    assert (result.batches, result.dead_lettered) == (4, 0)
    assert sample_count() == 8
    assert pending(redis_client, metrics_stream) == 0


def test_ingested_batch_rows_and_host_last_seen_come_from_the_stored_batch(redis_client, metrics_stream):
    an_hour_ago = time.time() - 3600
    redis_client.xadd(metrics_stream, {"b": make_batch(agent="a1", ts=an_hour_ago)})
    before = time.time()
    consumer(redis_client).drain(max_seconds=5)
    assert IngestedBatch.objects.get(agent_id="a1").rows == 2
    host = Host.objects.get(agent_id="a1")
    assert host.last_seen >= host.first_seen
    assert host.last_seen.timestamp() >= before - 1  # when stored, not the producer's sent_at


def test_type_confused_entries_never_stay_pending(redis_client, metrics_stream):
    bad = [
        {"v": {"a": 1}, "kind": "metrics"},
        {"v": 1, "kind": ["metrics"]},
        {"v": 1, "kind": "metrics", "agent": {"id": "a", "host": "h"}, "epoch": 2**64 - 1, "seq": 0, "sent_at": 1.0},
        {"v": 1, "kind": "metrics", "agent": {"id": "a", "host": "h"}, "epoch": 1, "seq": 0, "sent_at": 1.0,
         "series": [{"name": "x", "type": {"t": 1}, "points": []}]},
    ]  # fmt: skip
    for body in bad:
        redis_client.xadd(metrics_stream, {"b": msgpack.packb(body)})
        redis_client.xadd(metrics_stream, {"b": make_batch()})
    result = consumer(redis_client, chunk=100).drain(max_seconds=5)
    assert (result.batches, result.dead_lettered) == (4, 4)
    assert pending(redis_client, metrics_stream) == 0


def test_entries_stored_before_redis_went_away_are_acknowledged_when_it_returns(tmp_path, metrics_stream):
    """Redis stops between the commit and the XACK; the next drain retries its own pending entries at once."""
    from tests.agent.conftest import PrivateRedis

    data = tmp_path / "redis"
    data.mkdir()
    server = PrivateRedis(data)
    server.start()
    try:
        client = server.client()
        for _ in range(3):
            client.xadd(metrics_stream, {"b": make_batch()})

        class RedisStopsBeforeAck(StreamConsumer):
            def acknowledge(self, chunk):
                server.stop()  # saves the stream and its pending list, like a restart
                return super().acknowledge(chunk)

        stopping = RedisStopsBeforeAck(client, streams.METRICS, MetricsHandler(), consumer="c1", block_ms=0)
        with pytest.raises(Exception, match="onnect"):
            stopping.drain(max_seconds=5)
        assert sample_count() == 6  # committed before Redis went away
        server.start()
        client = server.client()
        assert client.xpending(metrics_stream, "ingest")["pending"] == 3
        result = consumer(client, claim_idle_ms=3_600_000).drain(max_seconds=5)
        assert (result.retried, result.duplicates, result.batches) == (3, 3, 0)
        assert sample_count() == 6
        assert client.xpending(metrics_stream, "ingest")["pending"] == 0
    finally:
        server.kill()


def test_a_drain_job_waits_quietly_through_an_outage_and_says_when_ingest_resumes(
    redis_client, metrics_stream, caplog
):
    from alerting_worker.ingest import jobs

    redis_client.xadd(metrics_stream, {"b": make_batch()})
    real_port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = "1"
    try:
        with caplog.at_level(logging.WARNING, logger="alerting_worker.ingest.jobs"):
            assert jobs.drain(streams.METRICS) == {"waiting": 1}
            assert jobs.drain(streams.METRICS) == {"waiting": 1}
    finally:
        connection.close()
        connection.settings_dict["PORT"] = real_port
    with caplog.at_level(logging.WARNING, logger="alerting_worker.ingest.jobs"):
        assert jobs.drain(streams.METRICS)["batches"] == 1
    lines = [r.getMessage() for r in caplog.records if r.name == "alerting_worker.ingest.jobs"]
    assert len(lines) == 2  # one when it started waiting, one when it resumed: not one per try
    assert "database unreachable" in lines[0] and "resumed after" in lines[1]
