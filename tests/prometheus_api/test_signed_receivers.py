"""Remote write and OTLP batches are signed by the server, so they pass while signing is required."""

from __future__ import annotations

import time

import pytest
import snappy

from alerting_worker.ingest.consumer import StreamConsumer
from alerting_worker.ingest.jobs import handler_for
from alerting_worker.ingest.metrics_handler import CACHE
from collector_server.monitoring.models import Series
from collector_server.prometheus_api.remote_pb import WriteRequest
from shared import signing, streams


def _remote_write(api, host: str) -> None:
    request = WriteRequest()
    series = request.timeseries.add()
    series.labels.add(name="__name__", value="queue_depth")
    series.labels.add(name="host", value=host)
    series.samples.add(value=7.0, timestamp=int(time.time() * 1000) - 1000)
    response = api.generic(
        "POST",
        "/prometheus/api/v1/write",
        snappy.compress(request.SerializeToString()),
        content_type="application/x-protobuf",
        HTTP_CONTENT_ENCODING="snappy",
    )
    assert response.status_code == 204, response.content


def _drain(redis_client):
    CACHE.clear()
    return StreamConsumer(
        redis_client, streams.METRICS, handler_for(streams.METRICS), consumer="t", block_ms=0
    ).drain(max_seconds=20)


@pytest.mark.django_db(transaction=True)
def test_remote_write_is_stored_while_signed_batches_are_required(api, redis_client, partitions, settings):
    settings.REQUIRE_SIGNED_BATCHES = True
    _remote_write(api, "edge-1")
    fields = redis_client.xrange(streams.stream_key(streams.METRICS))[0][1]
    assert fields[signing.KEY_FIELD] == signing.SERVER_KEY_ID.encode()
    result = _drain(redis_client)
    assert result.dead_lettered == 0 and result.batches == 1
    assert Series.objects.filter(name="queue_depth", labels__host="edge-1").exists()


@pytest.mark.django_db(transaction=True)
def test_a_forged_server_signature_is_refused(redis_client, partitions, settings):
    settings.REQUIRE_SIGNED_BATCHES = True
    from shared.wire import encode_batch

    payload = encode_batch(
        kind="metrics", agent_id="x", host="db-prod-1", agent_version="1", epoch=1, seq=1,
        sent_at=time.time(), series=[{"name": "up", "type": "gauge", "labels": {}, "points": [[time.time(), 1.0]]}],
    )  # fmt: skip
    forged = signing.Signer(signing.Credential(signing.SERVER_KEY_ID, "A" * 43)).fields(payload)
    redis_client.xadd(streams.stream_key(streams.METRICS), {streams.PAYLOAD_FIELD: payload, **forged})
    result = _drain(redis_client)
    assert result.dead_lettered == 1 and result.batches == 0
    assert not Series.objects.filter(labels__host="db-prod-1").exists()
