from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import msgpack
import pytest
from django.db import connection

from alerting_worker.ingest import stats
from alerting_worker.ingest.consumer import CLAIM_FIRST_AFTER_DUPLICATE, DrainResult, StreamConsumer
from alerting_worker.ingest.logs_handler import LOGS_HANDLER
from alerting_worker.ingest.metrics_handler import MetricsHandler
from collector_server.monitoring.models import Host, IngestedBatch, Series
from shared import streams
from shared.wire import encode_batch

from .conftest import make_batch, sample_count

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("clean_tables", "wire")]


def consumer(redis_client, name="c1", claim_idle_ms=60_000, chunk_samples=100_000) -> StreamConsumer:
    return StreamConsumer(
        redis_client,
        streams.METRICS,
        MetricsHandler(),
        consumer=name,
        chunk=50,
        chunk_samples=chunk_samples,
        block_ms=0,
        claim_idle_ms=claim_idle_ms,
    )


def test_batch_is_stored_with_host_and_series(redis_client, metrics_stream):
    redis_client.xadd(metrics_stream, {"b": make_batch(agent="a1", host="db-7", value=42.5)})
    result = consumer(redis_client).drain(max_seconds=5)
    assert (result.batches, result.rows, result.dead_lettered) == (1, 2, 0)
    host = Host.objects.get(agent_id="a1")
    assert host.hostname == "db-7" and host.is_up
    cpu = Series.objects.get(name="system_cpu_usage_percent")
    assert cpu.labels == {"host": "db-7"} and cpu.host_id == host.id
    net = Series.objects.get(name="system_network_bytes_sent_total")
    assert net.kind == "counter" and net.labels_key == "host=db-7,interface=eth0"
    with connection.cursor() as cursor:
        cursor.execute("SELECT value FROM monitoring_sample WHERE series_id = %s", [cpu.id])
        assert cursor.fetchall() == [(42.5,)]
    assert redis_client.xpending(metrics_stream, "ingest")["pending"] == 0


def identity_rows() -> list[tuple[int, int]]:
    return sorted(IngestedBatch.objects.values_list("seq", "rows"))


def test_new_entries_are_stored_then_claimed_with_their_row_counts(redis_client, metrics_stream):
    for seq in (1, 2):
        redis_client.xadd(metrics_stream, {"b": make_batch(agent="a1", seq=seq)})
    c = consumer(redis_client)
    result = c.drain(max_seconds=5)
    assert (result.batches, result.duplicates, result.rows) == (2, 0, 4)
    assert c.claim_first_chunks == 0  # nothing was stored before: no rollback
    assert identity_rows() == [(1, 2), (2, 2)]


def test_a_resent_batch_among_new_entries_rolls_back_and_its_chunk_claims_first(redis_client, metrics_stream):
    payload = make_batch(agent="a1", seq=7)
    redis_client.xadd(metrics_stream, {"b": payload})
    c = consumer(redis_client)
    c.drain(max_seconds=5)
    redis_client.xadd(metrics_stream, {"b": make_batch(agent="a1", seq=8)})
    redis_client.xadd(metrics_stream, {"b": payload})  # the agent sent it again: a new entry
    second = c.drain(max_seconds=5)
    assert (second.batches, second.duplicates, second.rows) == (1, 1, 2)
    assert c.claim_first_chunks == CLAIM_FIRST_AFTER_DUPLICATE
    redis_client.xadd(metrics_stream, {"b": make_batch(agent="a1", seq=9)})
    redis_client.xadd(metrics_stream, {"b": payload})
    third = c.drain(max_seconds=5)  # claimed first: the resent batch is skipped without a rollback
    assert (third.batches, third.duplicates, third.rows) == (1, 1, 2)
    assert c.claim_first_chunks == CLAIM_FIRST_AFTER_DUPLICATE - 1
    assert sample_count() == 6
    assert identity_rows() == [(7, 2), (8, 2), (9, 2)]
    assert redis_client.xpending(metrics_stream, "ingest")["pending"] == 0


def test_a_chunk_reads_fewer_entries_when_its_batches_are_big(redis_client, metrics_stream):
    c = consumer(redis_client)
    c.chunk_samples = 6  # each batch holds 2 samples: 3 entries a chunk
    for seq in range(1, 11):
        redis_client.xadd(metrics_stream, {"b": make_batch(seq=seq)})
    assert c.read_count() == 50  # nothing learned yet: the entry limit
    c.drain(max_seconds=0)  # creates the group
    result = DrainResult()
    assert c.read_chunk(result) == 10
    assert c.read_count() == 3
    for seq in range(11, 21):
        redis_client.xadd(metrics_stream, {"b": make_batch(seq=seq)})
    assert [c.read_chunk(result) for _ in range(5)] == [3, 3, 3, 1, 0]
    assert (result.batches, sample_count()) == (20, 40)
    c.chunk = 2  # the entry limit still holds
    assert c.read_count() == 2


def chunk_sizes(c: StreamConsumer) -> list[int]:
    """Record the entries of each chunk `c` processes, and the batches of each transaction (negative)."""
    sizes: list[int] = []
    process, write = c.process, c._write

    def recording_process(entries, result, redelivered=False):
        sizes.append(len(entries))
        process(entries, result, redelivered)

    def recording_write(batches, chunk, result):
        sizes.append(-len(batches))
        write(batches, chunk, result)

    c.process, c._write = recording_process, recording_write
    return sizes


def learn_three_entries_a_chunk(redis_client, metrics_stream) -> None:
    """Store one chunk of 2-sample batches through a consumer that is then dropped (a job that ended)."""
    redis_client.xadd(metrics_stream, {"b": make_batch()})
    consumer(redis_client, name="earlier-job", chunk_samples=6).drain(max_seconds=5)


def test_a_new_consumer_in_the_same_process_reads_the_learned_chunk_size(redis_client, metrics_stream):
    learn_three_entries_a_chunk(redis_client, metrics_stream)
    for _ in range(7):
        redis_client.xadd(metrics_stream, {"b": make_batch()})
    c = consumer(redis_client, chunk_samples=6)  # the next job's consumer
    assert c.read_count() == 3
    sizes = chunk_sizes(c)
    c.drain(max_seconds=5)
    assert sizes == [3, -3, 3, -3, 1, -1]
    assert sample_count() == 16


def test_retried_entries_are_read_in_chunks_of_the_learned_size(redis_client, metrics_stream):
    learn_three_entries_a_chunk(redis_client, metrics_stream)
    for _ in range(7):
        redis_client.xadd(metrics_stream, {"b": make_batch()})
    redis_client.xreadgroup("ingest", "c1", {metrics_stream: ">"}, count=100)  # read before an outage
    c = consumer(redis_client, chunk_samples=6)
    sizes = chunk_sizes(c)
    result = c.drain(max_seconds=5)
    assert sizes == [3, -3, 3, -3, 1, -1]
    assert (result.retried, result.batches, sample_count()) == (7, 7, 16)
    assert redis_client.xpending(metrics_stream, "ingest")["pending"] == 0


def test_reclaimed_entries_are_read_in_chunks_of_the_learned_size(redis_client, metrics_stream):
    learn_three_entries_a_chunk(redis_client, metrics_stream)
    for _ in range(7):
        redis_client.xadd(metrics_stream, {"b": make_batch()})
    redis_client.xreadgroup("ingest", "dead-worker", {metrics_stream: ">"}, count=100)
    c = consumer(redis_client, name="c2", claim_idle_ms=0, chunk_samples=6)
    sizes = chunk_sizes(c)
    result = c.drain(max_seconds=5)
    assert sizes == [3, -3, 3, -3, 1, -1]
    assert (result.reclaimed, result.batches, sample_count()) == (7, 7, 16)
    assert redis_client.xpending(metrics_stream, "ingest")["pending"] == 0


def test_a_first_chunk_of_big_batches_is_stored_in_transactions_of_chunk_samples(
    redis_client, metrics_stream
):
    for _ in range(7):
        redis_client.xadd(metrics_stream, {"b": make_batch()})
    c = consumer(redis_client, chunk_samples=6)  # nothing learned for this stream yet: 50 entries
    sizes = chunk_sizes(c)
    result = c.drain(max_seconds=5)
    assert sizes == [7, -3, -3, -1]
    assert (result.batches, sample_count()) == (7, 14)
    assert IngestedBatch.objects.count() == 7
    assert redis_client.xpending(metrics_stream, "ingest")["pending"] == 0


def test_the_chunk_bound_counts_log_records(redis_client):
    key = streams.stream_key(streams.LOGS)
    now = time.time()
    for seq in range(1, 8):
        records = [{"ts": now, "level": "INFO", "message": f"line {i}", "attrs": {}} for i in range(4)]
        data = encode_batch(
            kind="logs",
            agent_id="a1",
            host="web-1",
            agent_version="",
            epoch=1,
            seq=seq,
            sent_at=now,
            logs=records,
        )
        redis_client.xadd(key, {"b": data})
    c = StreamConsumer(
        redis_client, streams.LOGS, LOGS_HANDLER, consumer="c1", chunk=50, chunk_samples=8, block_ms=0
    )
    sizes = chunk_sizes(c)
    first = DrainResult()
    c.recover(first)
    assert c.read_chunk(first) == 7  # nothing learned: 7 batches of 4 records, 2 a transaction
    assert sizes == [7, -2, -2, -2, -1]
    assert c.read_count() == 2  # 8 records a chunk at 4 records an entry
    assert (
        StreamConsumer(redis_client, streams.LOGS, LOGS_HANDLER, chunk=50, chunk_samples=8).read_count() == 2
    )
    assert (first.batches, first.rows) == (7, 28)


def test_batch_replayed_twice_is_stored_once(redis_client, metrics_stream):
    payload = make_batch(seq=7)
    redis_client.xadd(metrics_stream, {"b": payload})
    redis_client.xadd(metrics_stream, {"b": payload})
    first = consumer(redis_client).drain(max_seconds=5)
    redis_client.xadd(metrics_stream, {"b": payload})  # a replayed spool, later
    second = consumer(redis_client).drain(max_seconds=5)
    assert (first.batches, first.duplicates, second.batches, second.duplicates) == (1, 1, 0, 1)
    assert sample_count() == 2
    assert IngestedBatch.objects.count() == 1
    assert stats.read(redis_client)["batches_duplicate"] == 2


def test_poison_entry_is_dead_lettered_and_pipeline_goes_on(redis_client, metrics_stream):
    redis_client.xadd(metrics_stream, {"b": b"\xc1 not msgpack"})
    redis_client.xadd(metrics_stream, {"b": msgpack.packb({"v": 99, "kind": "metrics"})})
    redis_client.xadd(metrics_stream, {"b": make_batch()})
    result = consumer(redis_client).drain(max_seconds=5)
    assert (result.dead_lettered, result.batches) == (2, 1)
    assert sample_count() == 2
    dead = redis_client.xrange(streams.stream_key(streams.DEAD_LETTER))
    reasons = sorted(fields[b"reason"].decode() for _, fields in dead)
    assert reasons[0].startswith("not valid msgpack")
    assert reasons[1].startswith("unsupported wire version 99")
    assert dead[0][1][b"b"] == b"\xc1 not msgpack"  # the original bytes are kept for inspection
    assert stats.read(redis_client)["batches_deadlettered"] == 2
    assert redis_client.xpending(metrics_stream, "ingest")["pending"] == 0


def test_too_old_and_future_samples_are_counted_not_stored(redis_client, metrics_stream):
    now = time.time()
    redis_client.xadd(metrics_stream, {"b": make_batch(ts=now - 30 * 86400)})
    redis_client.xadd(metrics_stream, {"b": make_batch(ts=now + 7 * 86400)})
    consumer(redis_client).drain(max_seconds=5)
    counters = stats.read(redis_client)
    assert counters["samples_rejected_too_old"] == 2
    assert counters["samples_rejected_future"] == 2
    assert sample_count() == 0


def test_entries_of_a_dead_consumer_are_reclaimed_and_stored_once(redis_client, metrics_stream):
    for _ in range(3):
        redis_client.xadd(metrics_stream, {"b": make_batch()})
    dead = consumer(redis_client, name="dies")
    dead.drain(max_seconds=0)  # creates the group
    redis_client.xreadgroup("ingest", "dies", {metrics_stream: ">"}, count=10)  # read, never acked
    assert redis_client.xpending(metrics_stream, "ingest")["pending"] == 3
    time.sleep(0.3)
    result = consumer(redis_client, name="alive", claim_idle_ms=200).drain(max_seconds=5)
    assert (result.reclaimed, result.batches) == (3, 3)
    assert sample_count() == 6
    assert redis_client.xpending(metrics_stream, "ingest")["pending"] == 0


CRASHING_CONSUMER = textwrap.dedent(
    """
    import os, django
    django.setup()
    from alerting_worker.ingest.consumer import CLAIM_FIRST_AFTER_DUPLICATE, DrainResult, StreamConsumer
    from alerting_worker.ingest.metrics_handler import MetricsHandler

    class DiesBeforeAck(StreamConsumer):
        def acknowledge(self, chunk):
            os._exit(9)  # the transaction has committed; the XACK never happens

    import redis
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    DiesBeforeAck(client, "metrics", MetricsHandler(), consumer="crasher", block_ms=0).drain(max_seconds=5)
    """
)


def test_worker_killed_after_commit_before_ack_stores_each_batch_once(
    redis_client, metrics_stream, redis_url
):
    for _ in range(4):
        redis_client.xadd(metrics_stream, {"b": make_batch()})
    db = connection.settings_dict
    env = dict(
        os.environ,
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        REDIS_URL=redis_url,
        DJANGO_SETTINGS_MODULE="collector_server.settings",
        SECRET_KEY="test",
    )
    proc = subprocess.run([sys.executable, "-c", CRASHING_CONSUMER], env=env, timeout=60, capture_output=True)
    assert proc.returncode == 9, proc.stderr.decode()[-2000:]
    assert sample_count() == 8  # committed by the process that died
    assert redis_client.xpending(metrics_stream, "ingest")["pending"] == 4
    time.sleep(0.3)
    result = consumer(redis_client, name="alive", claim_idle_ms=200).drain(max_seconds=5)
    assert (result.reclaimed, result.duplicates, result.batches) == (4, 4, 0)
    assert sample_count() == 8
    assert redis_client.xpending(metrics_stream, "ingest")["pending"] == 0


def test_new_series_are_created_once_by_two_consumers(redis_client, metrics_stream):
    for _ in range(20):
        redis_client.xadd(metrics_stream, {"b": make_batch()})
    a, b = consumer(redis_client, "a"), consumer(redis_client, "b")
    a.chunk = b.chunk = 5
    a.drain(max_seconds=0.01, stop_when_empty=True)
    b.drain(max_seconds=5)
    a.drain(max_seconds=5)
    assert Series.objects.count() == 2
    assert sample_count() == 40


def test_component_batches_belong_to_the_agents_host(redis_client, metrics_stream):
    redis_client.xadd(metrics_stream, {"b": make_batch(agent="a9", host="gpu-3")})
    redis_client.xadd(metrics_stream, {"b": make_batch(agent="a9/apps", host="gpu-3", epoch=2)})
    consumer(redis_client).drain(max_seconds=5)
    host = Host.objects.get()
    assert (host.agent_id, host.agent_version) == ("a9", "test")
    assert sample_count() == 4


def test_ingested_metrics_queue_one_rule_evaluation(redis_client, metrics_stream):
    from alerting_worker import jobs_guard
    from alerting_worker.ingest import alert_trigger

    for _ in range(3):
        redis_client.xadd(metrics_stream, {"b": make_batch()})
    c = consumer(redis_client)
    c.chunk = 1  # three chunks, three commits
    c.drain(max_seconds=5)
    alerts = jobs_guard.get_queue("alerts", redis_client)
    assert alerts.count == 1  # debounced: one evaluation waits, whatever the number of chunks
    assert alert_trigger.take(redis_client) == ["system_cpu_usage_percent", "system_network_bytes_sent_total"]
    alert_trigger.notify(redis_client, {"system_cpu_usage_percent"})
    jobs_guard.build_worker([alerts], name="test-alerts").work(burst=True)
    assert alerts.count == 0
    assert alert_trigger.take(redis_client) == []  # the job took the names


def test_label_values_with_commas_and_equals_are_distinct_series(redis_client, metrics_stream):
    from shared.wire import series_dict

    tricky = [
        series_dict("app_info", [[time.time(), 1.0]], {"a": "1,b=2"}),
        series_dict("app_info", [[time.time(), 2.0]], {"a": "1", "b": "2"}),
    ]
    redis_client.xadd(metrics_stream, {"b": make_batch(series=tricky)})
    consumer(redis_client).drain(max_seconds=5)
    assert Series.objects.filter(name="app_info").count() == 2


def host_row() -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT xmin::text, hostname, labels, last_seen FROM monitoring_host WHERE agent_id = 'a1'"
        )
        return cursor.fetchone()


def test_a_backlog_of_one_host_rewrites_its_row_only_when_something_changed(redis_client, metrics_stream):
    redis_client.xadd(metrics_stream, {"b": make_batch(agent="a1", host="db-7")})
    consumer(redis_client).drain(max_seconds=5)
    first = host_row()
    for _ in range(3):  # a worker catching up: nothing but last_seen would change, seconds apart
        redis_client.xadd(metrics_stream, {"b": make_batch(agent="a1", host="db-7")})
        consumer(redis_client).drain(max_seconds=5)
    assert host_row() == first
    redis_client.xadd(metrics_stream, {"b": make_batch(agent="a1", host="db-8")})  # renamed: written at once
    consumer(redis_client).drain(max_seconds=5)
    assert host_row()[1] == "db-8" and host_row()[3] >= first[3]
    with connection.cursor() as cursor:  # HOST_TOUCH_SECONDS later: last_seen moves again
        cursor.execute(
            "UPDATE monitoring_host SET last_seen = now() - interval '6 seconds' WHERE agent_id = 'a1'"
        )
    before = host_row()[3]
    redis_client.xadd(metrics_stream, {"b": make_batch(agent="a1", host="db-8")})
    consumer(redis_client).drain(max_seconds=5)
    assert host_row()[3] > before and Host.objects.get(agent_id="a1").is_up
    assert sample_count() == 12
