"""A logs batch pushed to the Redis stream is stored once and found by the search API."""

from __future__ import annotations

import time

from alerting_worker.ingest import stats
from alerting_worker.ingest.consumer import StreamConsumer
from alerting_worker.ingest.logs_handler import LOGS_HANDLER
from shared import streams
from shared.wire import encode_batch


def push(client, seq: int, logs: list[dict]) -> None:
    payload = encode_batch(kind="logs", agent_id="agent-a", host="web-9", agent_version="1", epoch=5, seq=seq,
                           sent_at=time.time(), logs=logs)  # fmt: skip
    client.xadd(streams.stream_key(streams.LOGS), {streams.PAYLOAD_FIELD: payload})


def test_stream_batch_is_stored_once_and_searchable(api, partitions, redis_client):
    now = time.time()
    logs = [
        {"ts": now - 3, "level": "ERROR", "message": "upstream reset", "request_id": "req-s1"},
        {"ts": now - 2, "level": "BOGUS", "message": "rejected"},
    ]
    push(redis_client, 1, logs)
    push(redis_client, 1, logs)  # the agent resent the same batch
    result = StreamConsumer(redis_client, streams.LOGS, LOGS_HANDLER).drain(max_seconds=10)
    assert result.rows == 1
    assert result.duplicates == 1
    counters = stats.read(redis_client)
    assert counters["logs_ingested"] == 1
    assert counters["logs_rejected"] == 1
    body = api.get("/api/v1/logs/search", {"request_id": "req-s1"}).json()
    assert [(r["host"], r["message"]) for r in body["data"]] == [("web-9", "upstream reset")]
