"""STREAM_REDIS_URL: the streams on a Redis of their own, apart from the RQ Redis."""

from __future__ import annotations

import pytest

from alerting_worker.ingest import jobs, stats
from collector_server import redis_conn
from collector_server.monitoring import health, prometheus
from shared import streams
from tests.ingest.conftest import make_batch, sample_count

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("clean_tables")]


@pytest.fixture
def stream_redis(private_redis, redis_client, settings):
    settings.STREAM_REDIS_URL = private_redis.url
    redis_conn._client.cache_clear()
    health._client.cache_clear()
    yield private_redis.client()
    redis_conn._client.cache_clear()
    health._client.cache_clear()


def test_drain_reads_the_stream_redis_and_metrics_report_it(stream_redis, redis_client):
    stream_redis.xadd(streams.stream_key(streams.METRICS), {"b": make_batch()})
    stream_redis.xadd(streams.stream_key(streams.METRICS), {"b": b"not msgpack"})
    summary = jobs.drain(streams.METRICS, max_seconds=5)
    assert (summary["batches"], summary["dead_lettered"], sample_count()) == (1, 1, 2)
    assert stats.read(stream_redis)["batches_ingested"] == 1
    assert not redis_client.exists(streams.stream_key(streams.METRICS))  # nothing on the RQ Redis
    families = {f.name: f for f in prometheus.collect()}
    assert families["fleetwatch_batches_ingested_total"].samples == [({}, 1)]
    assert families["fleetwatch_deadletter_length"].samples == [({}, 1)]
    streams_check = health.check_streams(health.health_stream_redis())
    assert streams_check.details["metrics"]["length"] == 2
