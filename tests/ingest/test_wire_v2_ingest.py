"""Version 2 batches through the real consumer: the same rows and counts as version 1, cached catalogs."""

from __future__ import annotations

import math
import time

import pytest
from django.db import connection

from alerting_worker.ingest import stats
from alerting_worker.ingest.consumer import StreamConsumer
from alerting_worker.ingest.metrics_handler import CACHE, MetricsHandler
from collector_server.monitoring.models import Series
from shared import host_limits, streams
from shared.wire import COUNTER, series_dict

from .conftest import make_batch, sample_count

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("clean_tables")]


def drain(redis_client, chunk: int = 50):
    return StreamConsumer(
        redis_client, streams.METRICS, MetricsHandler(), consumer="c1", chunk=chunk, block_ms=0
    ).drain(max_seconds=10)


def rows_of(agent_id: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT r.name, r.kind, r.labels_key, s.ts, s.value FROM monitoring_sample s "
            "JOIN monitoring_series r ON r.id = s.series_id JOIN monitoring_host h ON h.id = r.host_id "
            "WHERE h.agent_id = %s ORDER BY 1, 3, 4",
            [agent_id],
        )
        return [(name, kind, key.replace(f"host={agent_id}", "host=*"), ts, value) for name, kind, key, ts, value in cursor.fetchall()]  # fmt: skip


def mixed_series(now: float) -> list[dict]:
    """Every outcome of a point: stored, too old, in the future, not finite; several points per series."""
    return [
        series_dict(
            "app_requests_total", [[now - 20, 5.0], [now - 10, 7.0], [now, 2**53]], {"path": "/"}, COUNTER
        ),
        series_dict("app_temp", [[now - 30 * 86400, 1.0], [now + 7 * 86400, 2.0], [now, math.nan]]),
        series_dict("app_temp", [[now, -math.inf], [now - 5.5e-7, 0.25]], {"zone": "a"}),
        series_dict("app_idle", []),
    ]


def test_version_2_stores_the_same_rows_and_counts_as_version_1(redis_client, metrics_stream):
    now = time.time()
    for version in (1, 2):
        batch = make_batch(agent=f"v{version}", host=f"v{version}", series=mixed_series(now), version=version)
        redis_client.xadd(metrics_stream, {"b": batch})
        result = drain(redis_client)
        assert (result.batches, result.rows, result.dead_lettered) == (1, 4, 0)
        counts = stats.read(redis_client)
        assert (
            counts["samples_rejected_too_old"],
            counts["samples_rejected_future"],
            counts["samples_rejected_invalid"],
        ) == (version, version, 2 * version)
    assert rows_of("v1") == rows_of("v2") and len(rows_of("v2")) == 4
    assert Series.objects.filter(host__agent_id="v2").count() == 4  # the idle series exists too


def test_a_catalog_is_cached_per_host_and_each_host_keeps_its_series(redis_client, metrics_stream):
    now = time.time()
    for round_ in range(3):  # the same catalog bytes from two hosts, three times each
        for host in ("web-1", "web-2"):
            series = [
                series_dict("cpu", [[now + round_, float(round_)]], {"core": "0"}),
                series_dict("load", [[now + round_, 1.0]]),
            ]
            redis_client.xadd(metrics_stream, {"b": make_batch(agent=host, host=host, series=series, version=2)})  # fmt: skip
        drain(redis_client)
    assert len(CACHE.catalogs) == 2
    assert Series.objects.count() == 4
    for host in ("web-1", "web-2"):
        assert [(name, value) for name, _, _, _, value in rows_of(host)] == [
            ("cpu", 0.0), ("cpu", 1.0), ("cpu", 2.0), ("load", 1.0), ("load", 1.0), ("load", 1.0)
        ]  # fmt: skip
    # A changed catalog (a new interface) is resolved once more; the old series keep their ids.
    series = [
        series_dict("cpu", [[now + 9, 9.0]], {"core": "0"}),
        series_dict("cpu", [[now + 9, 8.0]], {"core": "1"}),
    ]
    redis_client.xadd(
        metrics_stream, {"b": make_batch(agent="web-1", host="web-1", series=series, version=2)}
    )
    assert drain(redis_client).rows == 2
    assert Series.objects.count() == 5 and len(CACHE.catalogs) == 3


def test_version_1_and_2_batches_share_one_chunk(redis_client, metrics_stream):
    for n in range(10):
        redis_client.xadd(
            metrics_stream, {"b": make_batch(agent=f"a{n % 3}", host=f"h{n % 3}", version=1 + n % 2)}
        )
    result = drain(redis_client, chunk=10)
    assert (result.batches, result.rows, result.dead_lettered) == (10, 20, 0)
    assert sample_count() == 20 and Series.objects.count() == 6
    # Both caches learned what they should: each series' literal, and each host's catalog.
    assert sorted((host, name) for _, host, name, *_ in CACHE.fast) == sorted(
        (f"h{n}", name)
        for n in range(3)
        for name in ("system_cpu_usage_percent", "system_network_bytes_sent_total")
    )
    assert sorted(host for _, host, _ in CACHE.catalogs) == ["h0", "h1", "h2"]


def test_a_series_over_a_limit_is_refused_in_every_batch_and_the_rest_stored(
    redis_client, metrics_stream, settings
):
    settings.LIMIT_SERIES_PER_HOST = 1
    settings.LIMIT_LABEL_VALUE_LENGTH = 10
    now = time.time()
    for n in range(2):
        series = [
            series_dict("m_ok", [[now + n, 1.0]]),
            series_dict("m_over", [[now + n, 2.0]]),
            series_dict("m_long", [[now + n, 3.0]], {"path": "x" * 11}),
        ]
        redis_client.xadd(metrics_stream, {"b": make_batch(agent="a1", host="h1", series=series, version=2)})
        result = drain(redis_client)
        assert (result.batches, result.rows) == (1, 1)
    assert host_limits.read(redis_client, "a1").counts == {"series_per_host": 2, "label_value_length": 2}
    assert list(Series.objects.values_list("name", flat=True)) == ["m_ok"]
    assert not CACHE.catalogs  # a catalog with a refused series is resolved again each time


def test_a_catalog_met_twice_in_one_chunk_is_resolved_once_and_refused_in_both_batches(
    redis_client, metrics_stream, settings
):
    settings.LIMIT_SERIES_PER_HOST = 2
    settings.LIMIT_LABEL_VALUE_LENGTH = 10
    now = time.time()
    for n in range(2):  # one chunk: the same catalog bytes twice, not cached yet
        series = [
            series_dict("m_a", [[now + n, 1.0]]),
            series_dict("m_b", [[now + n, 2.0]]),
            series_dict("m_long", [[now + n, 3.0]], {"path": "x" * 11}),
        ]
        redis_client.xadd(metrics_stream, {"b": make_batch(agent="a1", host="h1", series=series, version=2)})
    for n in range(2):  # another host's catalog, every series admitted
        series = [series_dict("m_a", [[now + n, 1.0]]), series_dict("m_b", [[now + n, 2.0]])]
        redis_client.xadd(metrics_stream, {"b": make_batch(agent="a2", host="h2", series=series, version=2)})
    result = drain(redis_client)
    assert (result.batches, result.rows) == (4, 8)
    assert host_limits.read(redis_client, "a1").counts == {"label_value_length": 2}
    assert host_limits.read(redis_client, "a2") is None
    assert sorted(Series.objects.values_list("name", "labels_key")) == [
        ("m_a", "host=h1"),
        ("m_a", "host=h2"),
        ("m_b", "host=h1"),
        ("m_b", "host=h2"),
    ]
    with connection.cursor() as cursor:
        cursor.execute("SELECT series_id, count(*) FROM monitoring_sample GROUP BY 1")
        assert sorted(count for _, count in cursor.fetchall()) == [2, 2, 2, 2]
    assert sorted(host for _, host, _ in CACHE.catalogs) == ["h2"]  # h1's has a refused series


def test_the_catalog_cache_is_bounded_by_bytes():
    import numpy as np

    from alerting_worker.ingest.metrics_handler import SeriesCache

    cache = SeriesCache()
    cache.CATALOG_BYTES_LIMIT = 10_000
    ids = np.arange(10, dtype=np.int64)
    for n in range(20):  # 20 catalogs of ~1 KB: never more than 10 KB held
        cache.add_catalogs({(1, f"h{n}", bytes(1000)): ids})
        assert cache.catalog_bytes <= 10_000 and len(cache.catalogs) <= 9
    assert (1, "h19", bytes(1000)) in cache.catalogs
