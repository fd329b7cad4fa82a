"""Packed rollup blocks: built by the rollup job, equal to the buckets, read by the PromQL engine.

The engine reads a block (60 sealed buckets of a series, packed) where it would read the
buckets one by one; every answer must be the one the buckets give, before and after late data.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection

from collector_server.prometheus_api.promql import rollup_blocks

QUERIES = [
    "sum by (host) (rate(jobs_total[5m]))",
    "increase(jobs_total[10m])",
    "delta(temperature[5m])",
    "avg_over_time(temperature[5m])",
    "sum_over_time(temperature[10m])",
    "min_over_time(temperature[5m])",
    "max by (host) (max_over_time(temperature[15m]))",
    "count_over_time(temperature[5m])",
    "last_over_time(temperature[5m])",
]


def _seed(store, start: int, minutes: int) -> None:
    """Two counters (one restarting) and a gauge, a sample every 15 s, with a 20-minute gap.

    The tests seed 5 hours: whatever the clock, a 4-hour block of 5-minute buckets with data is
    sealed (its span starts before the data and ends before the watermark), and one rollup run
    (at most 6 hours) reaches back to the start.
    """
    for h, host in enumerate(("batch-1", "batch-2")):
        counter = store.series("jobs_total", "counter", host=host)
        value, points = 0.0, []
        for i in range(minutes * 4):
            value = 3.0 if (h == 1 and i == minutes * 2) else value + 1 + (i * (h + 1)) % 5  # a restart
            points.append((start + 15 * i + 3, value))
        store.samples(counter, points)
    gauge = store.series("temperature", "gauge", host="batch-1")
    gap = range(minutes * 2 + 40, minutes * 2 + 120)  # 20 minutes without samples
    store.samples(
        gauge, [(start + 15 * i + 7, 20 + (i * 7) % 11) for i in range(minutes * 4) if i not in gap]
    )


def _roll(now_s: int, since: int | None = None) -> None:
    """Run the rollup job at `now_s`; from `since` on a first run (it would reach 2 hours back)."""
    from alerting_worker.maintenance import rollups
    from collector_server.monitoring.models import RollupState

    if since is not None:
        for level in ("1m", "5m", "1h"):
            RollupState.objects.create(level=level, done_until=datetime.fromtimestamp(since, UTC))
    rollups.run_rollups(now=datetime.fromtimestamp(now_s, UTC))


def _answer(api, query: str, params: dict) -> list:
    response = api.get("/prometheus/api/v1/query_range", {"query": query, **params})
    assert response.status_code == 200, response.content
    return response.json()["data"]["result"]


def _without_blocks(api, query: str, params: dict) -> list:
    """The answer from the buckets alone: the block states removed (and put back)."""
    from collector_server.monitoring.models import RollupState

    states = list(RollupState.objects.filter(level__contains=":b"))
    RollupState.objects.filter(level__contains=":b").delete()
    try:
        return _answer(api, query, params)
    finally:
        RollupState.objects.bulk_create(states)


def _blocks_equal_buckets(level: str) -> int:
    """Assert every block of the packed range holds exactly its buckets' records; return how many."""
    since, until = rollup_blocks.packed_range(level)
    span = rollup_blocks.SPAN_SECONDS[level]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT count(*) FILTER (WHERE b.records IS DISTINCT FROM r.records), count(b.records)
            FROM (
                SELECT series_id, start, records FROM {rollup_blocks.BLOCK_TABLES[level]}
                WHERE start >= %(since)s AND start < %(until)s
            ) b
            FULL JOIN (
                SELECT series_id, date_bin(make_interval(secs => {span}), key, 'epoch'::timestamptz) AS start,
                       string_agg({rollup_blocks.record_sql(rollup_blocks.RECORD_FIELDS)}, ''::bytea ORDER BY key)
                           AS records
                FROM (
                    SELECT series_id, bucket AS key, count AS cnt, sum AS s, min AS lo, max AS hi, last AS lv,
                           first_ts AS ft, first AS fv, last_ts AS lt, resets AS rs, first_reset AS frs
                    FROM monitoring_rollup_{level} WHERE bucket >= %(since)s AND bucket < %(until)s
                ) x GROUP BY 1, 2
            ) r USING (series_id, start)
            """,
            {"since": since, "until": until},
        )
        different, blocks = cursor.fetchone()
    assert different == 0
    return blocks


@pytest.fixture
def copies(monkeypatch) -> list[int]:
    """Record the bytes of packed blocks each query reads."""
    from collector_server.prometheus_api.promql import storage

    sizes: list[int] = []
    original = storage.copy_bytea

    def recording(*args, **kwargs):
        data = original(*args, **kwargs)
        sizes.append(len(data))
        return data

    monkeypatch.setattr(storage, "copy_bytea", recording)
    return sizes


def test_the_rollup_job_packs_sealed_buckets_and_queries_read_them_with_the_same_answers(
    api, store, now_s, copies
):
    start = now_s - 5 * 3600
    _seed(store, start, 5 * 60)
    _roll(now_s, since=start)
    done = datetime.fromtimestamp(now_s, UTC)
    # Sealed: whole spans before the watermark minus the job's overlap.
    for level in ("1m", "5m", "1h"):
        since, until = rollup_blocks.packed_range(level)
        assert until == rollup_blocks.floor_span(done - timedelta(minutes=5), level)
        # The first run packed BACKFILL_SPANS spans back from the seal point (or to the oldest partition).
        assert until - since <= timedelta(
            seconds=rollup_blocks.SPAN_SECONDS[level] * rollup_blocks.BACKFILL_SPANS
        )
        assert since <= datetime.fromtimestamp(start, UTC)
    assert _blocks_equal_buckets("1m") >= 3 * 3 and _blocks_equal_buckets("5m") >= 3
    for step, hours in ((60, 4), (300, 5), (600, 5)):  # 1-minute, then 5-minute buckets
        params = {"start": (now_s - hours * 3600) // step * step, "end": now_s // step * step, "step": step}
        for query in QUERIES:
            copies.clear()
            with_blocks = _answer(api, query, params)
            assert copies and copies[0] > 0, (query, step)  # the blocks were read
            assert with_blocks, query
            assert with_blocks == _without_blocks(api, query, params), (query, step)


def test_late_data_rebuilds_the_sealed_blocks_it_falls_in(api, store, now_s, redis_client, copies):
    from alerting_worker.ingest import rollup_marks
    from collector_server.monitoring.models import Series

    start = now_s - 5 * 3600
    _seed(store, start, 5 * 60)
    _roll(now_s, since=start)
    params = {"start": now_s - 3 * 3600, "end": now_s - 3600, "step": 60}
    query = "sum by (host) (rate(jobs_total[5m]))"
    before = _answer(api, query, params)
    # A late sample (an agent's spool replayed) two and a half hours back: a sealed block.
    late = now_s - 9000 + 10
    assert datetime.fromtimestamp(late, UTC) < rollup_blocks.packed_range("1m")[1]
    store.samples(Series.objects.get(name="jobs_total", labels__host="batch-1"), [(late, 1e9)])
    rollup_marks.mark_late(redis_client, late)
    _roll(now_s + 60)
    assert _blocks_equal_buckets("1m") and _blocks_equal_buckets("5m")
    copies.clear()
    after = _answer(api, query, params)
    assert copies and after != before
    assert after == _without_blocks(api, query, params)


def test_blocks_are_built_from_scratch_without_a_state_and_left_out_of_sparse_reads(
    api, store, now_s, copies
):
    from collector_server.monitoring import partitions
    from collector_server.monitoring.models import RollupState

    start = now_s - 5 * 3600
    _seed(store, start, 5 * 60)
    _roll(now_s, since=start)
    # Blocks left over from before (a restore, an older version) and no state, and a block
    # partition missing: the next run packs them all again and creates the partition.
    RollupState.objects.filter(level__contains=":b").delete()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE monitoring_block_1m SET records = ''::bytea")
        today = datetime.fromtimestamp(now_s, UTC).date()
        cursor.execute(f'DROP TABLE "{partitions.partition_name(partitions.BLOCK_1M, today)}"')
    partitions.forget_cache()
    _roll(now_s + 60)
    assert _blocks_equal_buckets("1m") >= 4 * 3
    # A step longer than the window: only the buckets the windows reach are read, from rows.
    params = {"start": now_s - 3 * 3600, "end": now_s, "step": 3600}
    copies.clear()
    answer = _answer(api, "rate(jobs_total[5m])", params)
    assert answer and not copies
    assert answer == _without_blocks(api, "rate(jobs_total[5m])", params)


def test_a_rollup_run_that_did_not_keep_the_blocks_makes_the_next_run_start_again(store, now_s):
    """A worker of the previous version (no blocks) re-rolling late data during a rolling deploy."""
    from collector_server.monitoring.models import RollupState

    start = now_s - 5 * 3600
    _seed(store, start, 5 * 60)
    _roll(now_s, since=start)
    # The old worker's run: its watermark moves on, an old bucket changes, no block does.
    RollupState.objects.filter(level="1m").update(done_until=datetime.fromtimestamp(now_s + 60, UTC))
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE monitoring_rollup_1m SET count = count + 1, sum = sum + 1 WHERE bucket = %s",
            [datetime.fromtimestamp(now_s - 9000 // 60 * 60, UTC)],
        )
    _roll(now_s + 120)
    assert _blocks_equal_buckets("1m") >= 4 * 3


def test_an_old_database_is_packed_in_bounded_steps_and_read_once_packed(
    api, store, now_s, copies, monkeypatch
):
    monkeypatch.setattr(rollup_blocks, "BACKFILL_SPANS", 2)
    start = now_s - 5 * 3600
    _seed(store, start, 5 * 60)
    _roll(now_s, since=start)
    since, until = rollup_blocks.packed_range("1m")
    assert until - since == timedelta(hours=2)  # the first run: two spans back from the seal point
    query, params = "sum by (host) (rate(jobs_total[5m]))", {"start": start, "end": now_s, "step": 60}
    copies.clear()
    partly = _answer(api, query, params)
    assert not copies  # the range starts before the packed range: bucket rows only
    moved = now_s
    while rollup_blocks.packed_range("1m")[0] > datetime.fromtimestamp(start - 600, UTC):
        moved += 60
        _roll(moved)
    assert rollup_blocks.packed_range("1m")[0] <= datetime.fromtimestamp(start - 600, UTC)
    assert _blocks_equal_buckets("1m") >= 5 * 3
    copies.clear()
    assert _answer(api, query, params) == partly
    assert copies and copies[0] > 0


def test_retention_drops_blocks_with_their_level(db):
    from collector_server.monitoring import partitions

    today = date(2031, 3, 20)
    for spec in (partitions.ROLLUP_1M, partitions.BLOCK_1M, partitions.ROLLUP_1H, partitions.BLOCK_1H):
        partitions.ensure_partition(spec, today - timedelta(days=400))
        partitions.ensure_partition(spec, today)
    dropped = set(partitions.enforce_retention(today=today))
    old = today - timedelta(days=400)
    assert {f"monitoring_block_1m_p{old:%Y%m%d}", f"monitoring_rollup_1m_p{old:%Y%m%d}"} <= dropped
    assert {f"monitoring_block_1h_p{old:%Y%m}", f"monitoring_rollup_1h_p{old:%Y%m}"} <= dropped
    kept = {name for name, _ in partitions.existing_partitions(partitions.BLOCK_1M)}
    assert f"monitoring_block_1m_p{today:%Y%m%d}" in kept
    assert partitions.partition_name(partitions.BLOCK_1M, today) == f"monitoring_block_1m_p{today:%Y%m%d}"


def test_blocks_seal_behind_the_rollup_jobs_own_overlap():
    from alerting_worker.maintenance import rollups

    # Buckets within the overlap are recomputed by every run: a block must not hold them.
    assert rollup_blocks.LATE_TOLERANCE == rollups.LATE_TOLERANCE
    done = datetime(2026, 12, 1, 13, 4, tzinfo=UTC)
    assert rollup_blocks.seal_point("1m", done) == datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert rollup_blocks.seal_point("1m", done + timedelta(minutes=1)) == datetime(
        2026, 12, 1, 13, 0, tzinfo=UTC
    )
    assert rollup_blocks.seal_point("5m", done) == datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert rollup_blocks.seal_point("1h", done) == datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    # 60 records of 96 bytes fit a page inline (STORAGE PLAIN: no TOAST); spans divide a day.
    assert max(rollup_blocks.BUCKETS_PER_BLOCK.values()) * 8 * len(rollup_blocks.RECORD_FIELDS) < 8000
    assert all(86400 % span == 0 for span in rollup_blocks.SPAN_SECONDS.values())


def test_copy_values_reads_a_real_binary_copy_stream_and_refuses_anything_else(db):
    from collector_server.prometheus_api.promql import storage

    # A real stream: values of every size, an empty one, many rows.
    values = storage.copy_bytea(
        "SELECT decode(repeat('ab', n), 'hex') FROM generate_series(0, 300) AS n ORDER BY n", None
    )
    assert values == bytearray(b"".join(bytes.fromhex("ab" * n) for n in range(301)))
    # Framing handled across messages however Postgres groups them, header included.
    header = b"PGCOPY\n\xff\r\n\x00" + bytes(4) + (3).to_bytes(4, "big") + b"xyz"
    tuple_ = (1).to_bytes(2, "big") + (2).to_bytes(4, "big")
    trailer = (-1).to_bytes(2, "big", signed=True)
    assert (
        storage._copy_values([header + tuple_ + b"ab", tuple_ + b"cd" + tuple_ + b"ef", trailer]) == b"abcdef"
    )
    with pytest.raises(ValueError, match="not a binary COPY"):
        storage._copy_values([b"a,b\n"])
    with pytest.raises(ValueError, match="non-NULL"):  # a NULL value
        storage._copy_values([header + (1).to_bytes(2, "big") + (-1).to_bytes(4, "big", signed=True)])
    with pytest.raises(ValueError, match="one field"):  # a two-column SELECT
        storage._copy_values([header + (2).to_bytes(2, "big") + (2).to_bytes(4, "big") + b"ab"])
    with pytest.raises(ValueError, match="whole in its message"):  # a value cut across messages
        storage._copy_values([header + tuple_ + b"a", b"b"])
