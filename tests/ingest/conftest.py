from __future__ import annotations

import itertools
import time

import pytest
from django.db import connection

from shared import streams
from shared.wire import encode_batch, series_dict

_seq = itertools.count(1)
# The wire format version make_batch writes when none is given (the `wire` fixture sets it).
WIRE = {"version": 1}


@pytest.fixture(params=[1, 2], ids=["wire1", "wire2"])
def wire(request):
    """Run a test once with version 1 batches and once with version 2 (docs/wire-format.md)."""
    WIRE["version"] = request.param
    yield request.param
    WIRE["version"] = 1


def make_batch(
    agent="agent-a", host="web-1", seq=None, ts=None, value=1.0, series=None, epoch=1, version=None
) -> bytes:
    ts = time.time() if ts is None else ts
    return encode_batch(
        version=version or WIRE["version"],
        kind="metrics",
        agent_id=agent,
        host=host,
        agent_version="test",
        epoch=epoch,
        seq=next(_seq) if seq is None else seq,
        sent_at=ts,
        series=series
        or [
            series_dict("system_cpu_usage_percent", [[ts, value]]),
            series_dict(
                "system_network_bytes_sent_total", [[ts, value * 1000]], {"interface": "eth0"}, "counter"
            ),
        ],
    )


@pytest.fixture
def clean_tables(partitions):
    """Empty the partitioned tables Django's flush does not know about."""
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE monitoring_sample, monitoring_rollup_1m, monitoring_rollup_1h")
    from alerting_worker.ingest.metrics_handler import CACHE

    CACHE.clear()
    yield
    CACHE.clear()


@pytest.fixture
def metrics_stream(redis_client):
    return streams.stream_key(streams.METRICS)


def sample_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM monitoring_sample")
        return cursor.fetchone()[0]
