"""What ingest and rollups do when data or infrastructure misbehave."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import msgpack
import pytest
from django.db import connection

from alerting_worker.ingest import rollup_marks, stats
from alerting_worker.ingest.consumer import StreamConsumer
from alerting_worker.ingest.metrics_handler import MetricsHandler
from alerting_worker.maintenance import rollups, upkeep
from collector_server.monitoring import partitions
from collector_server.monitoring.models import Rollup1h, Rollup1m, RollupState, Series
from shared import streams

from .conftest import make_batch, sample_count

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("clean_tables")]


def consumer(redis_client, name="c1") -> StreamConsumer:
    return StreamConsumer(redis_client, streams.METRICS, MetricsHandler(), consumer=name, block_ms=0)


def raw_batch(points) -> bytes:
    return msgpack.packb(
        {"v": 1, "kind": "metrics", "agent": {"id": "a", "host": "h"}, "epoch": 1, "seq": 1, "sent_at": 1.0,
         "series": [{"name": "m", "type": "gauge", "labels": {}, "points": points}]}
    )  # fmt: skip


@pytest.mark.parametrize("bad_ts", [float("nan"), float("inf"), time.time() * 1000, -5.0])
def test_impossible_timestamp_is_dead_lettered_and_ingest_goes_on(redis_client, metrics_stream, bad_ts):
    redis_client.xadd(metrics_stream, {"b": raw_batch([[bad_ts, 1.0]])})
    redis_client.xadd(metrics_stream, {"b": make_batch()})
    result = consumer(redis_client).drain(max_seconds=5)
    assert (result.dead_lettered, result.batches) == (1, 1)
    reason = redis_client.xrange(streams.stream_key(streams.DEAD_LETTER))[0][1][b"reason"].decode()
    assert "not seconds since 1970" in reason
    assert redis_client.xpending(metrics_stream, "ingest")["pending"] == 0


def test_read_only_database_leaves_entries_pending_not_dead_lettered(redis_client, metrics_stream):
    for _ in range(3):
        redis_client.xadd(metrics_stream, {"b": make_batch()})
    with connection.cursor() as cursor:
        cursor.execute("SET SESSION default_transaction_read_only = on")
    try:
        with pytest.raises(Exception, match="read-only"):
            consumer(redis_client).drain(max_seconds=5)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET SESSION default_transaction_read_only = off")
    assert redis_client.xlen(streams.stream_key(streams.DEAD_LETTER)) == 0
    group = redis_client.xinfo_groups(metrics_stream)[0]
    assert (group["pending"], group["lag"]) == (0, 3)  # checked before reading: no delivery counted
    time.sleep(0.3)
    retry = StreamConsumer(redis_client, streams.METRICS, MetricsHandler(), consumer="c2", claim_idle_ms=200)
    assert retry.drain(max_seconds=5).batches == 3  # stored once the database is writable again
    assert sample_count() == 6


def test_sample_twenty_minutes_late_is_rolled_up(redis_client, metrics_stream):
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    RollupState.objects.create(level="1m", done_until=now - timedelta(minutes=1))
    late = (now - timedelta(minutes=20)).timestamp() + 5
    redis_client.xadd(metrics_stream, {"b": make_batch(ts=late, value=42.0)})
    consumer(redis_client).drain(max_seconds=5)
    assert rollup_marks.take_late(redis_client) == pytest.approx(late)
    rollup_marks.mark_late(redis_client, late)
    rollups.run_rollups(now=now)
    cpu = Series.objects.get(name="system_cpu_usage_percent")
    row = Rollup1m.objects.get(series=cpu)
    assert row.bucket == now - timedelta(minutes=20) and row.max == 42.0
    assert Rollup1h.objects.filter(series=cpu).exists()  # the hour level followed


def test_hour_rollups_never_run_ahead_of_minute_rollups(redis_client):
    now = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
    RollupState.objects.create(level="1m", done_until=now - timedelta(hours=3))
    RollupState.objects.create(level="1h", done_until=now - timedelta(hours=3))
    rollups.rollup_hours(now=now)
    assert RollupState.objects.get(level="1h").done_until == now - timedelta(hours=3)


def test_two_workers_creating_one_partition_at_once_both_succeed():
    day = datetime.now(UTC).date() + timedelta(days=40)
    errors: list[str] = []

    def create() -> None:
        try:
            partitions.ensure_partition(partitions.SAMPLES, day)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            connection.close()

    partitions.forget_cache()
    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert f"monitoring_sample_p{day:%Y%m%d}" in {
        n for n, _ in partitions.existing_partitions(partitions.SAMPLES)
    }
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE monitoring_sample_p{day:%Y%m%d}")
    partitions.forget_cache()


def test_dead_letters_are_bounded_and_the_trimmed_are_counted(redis_client, settings):
    settings.DEADLETTER_MAXLEN = 3
    dead = streams.stream_key(streams.DEAD_LETTER)
    for i in range(5):
        redis_client.xadd(dead, {"b": b"x", "reason": f"r{i}"})
    assert upkeep.trim_streams()[streams.DEAD_LETTER] == 2
    assert redis_client.xlen(dead) == 3
    assert stats.read(redis_client)["deadletters_trimmed"] == 2


def test_a_sample_in_a_day_without_partition_in_mid_chunk_is_stored(redis_client, metrics_stream):
    """Chunks prepare partitions from each batch's edges; an odd batch is retried alone, exactly."""
    day = datetime.now(UTC).date() - timedelta(days=3)
    partitions.forget_cache()
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS monitoring_sample_p{day:%Y%m%d}")
    old_ts = datetime(day.year, day.month, day.day, 12, tzinfo=UTC).timestamp()
    now = time.time()
    odd = make_batch(series=[
        {"name": "a", "type": "gauge", "labels": {}, "points": [[now, 1.0]]},
        {"name": "b", "type": "gauge", "labels": {}, "points": [[old_ts, 2.0]]},  # neither edge nor send time
        {"name": "c", "type": "gauge", "labels": {}, "points": [[now, 3.0]]},
    ])  # fmt: skip
    redis_client.xadd(metrics_stream, {"b": make_batch()})
    redis_client.xadd(metrics_stream, {"b": odd})
    result = consumer(redis_client).drain(max_seconds=5)
    assert (result.batches, result.dead_lettered) == (2, 0)
    assert sample_count() == 5
