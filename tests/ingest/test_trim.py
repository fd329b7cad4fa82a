from __future__ import annotations

import pytest

from alerting_worker.ingest.consumer import StreamConsumer
from alerting_worker.ingest.metrics_handler import MetricsHandler
from alerting_worker.maintenance.upkeep import trim_streams
from shared import streams

from .conftest import make_batch

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("clean_tables")]


def test_trim_removes_only_acknowledged_entries(redis_client, metrics_stream):
    for _ in range(6):
        redis_client.xadd(metrics_stream, {"b": make_batch()})
    consumer = StreamConsumer(redis_client, streams.METRICS, MetricsHandler(), consumer="c", chunk=4)
    consumer.drain(max_seconds=0)  # group only
    redis_client.xreadgroup("ingest", "slow", {metrics_stream: ">"}, count=2)  # read, not yet acked
    consumer.drain(max_seconds=5)  # stores and acks the other four
    assert redis_client.xlen(metrics_stream) == 6
    trimmed = trim_streams()
    assert trimmed["metrics"] == 0  # the oldest entry is still pending: nothing before it to trim
    pending = redis_client.xpending_range(metrics_stream, "ingest", "-", "+", 10)
    redis_client.xack(metrics_stream, "ingest", *[p["message_id"] for p in pending])
    trimmed = trim_streams()
    assert trimmed["metrics"] == 6
    assert redis_client.xlen(metrics_stream) == 0


def test_unread_entries_are_never_trimmed(redis_client, metrics_stream):
    consumer = StreamConsumer(redis_client, streams.METRICS, MetricsHandler(), consumer="c")
    consumer.drain(max_seconds=0)
    for _ in range(3):
        redis_client.xadd(metrics_stream, {"b": make_batch()})
    assert trim_streams()["metrics"] == 0
    assert redis_client.xlen(metrics_stream) == 3
