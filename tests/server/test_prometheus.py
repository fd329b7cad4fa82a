"""GET /metrics: valid exposition text with the pipeline's counters, streams, workers and hosts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rq import Worker

from alerting_worker import jobs_guard
from collector_server.monitoring import health
from shared import streams
from tests.server.conftest import make_host


def noop() -> None:
    """A job that is only enqueued, never run."""


@pytest.fixture
def metrics_client(redis_client):
    health._client.cache_clear()
    yield redis_client
    health._client.cache_clear()


def scrape(client) -> dict[str, list]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.content.decode()
    families = {f.name: f.samples for f in text_string_to_metric_families(text)}
    return families


def value(samples, **labels) -> float:
    matching = [s.value for s in samples if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(matching) == 1, (labels, samples)
    return matching[0]


def test_metrics_parse_and_carry_pipeline_counters(anonymous, db, metrics_client):
    metrics_client.hset(
        streams.stats_key(), mapping={"samples_ingested": 1234, "batches_deadlettered": 2, "logs_rejected": 7}
    )
    families = scrape(anonymous)
    # The parser strips _total from counter family names.
    assert value(families["fleetwatch_samples_ingested"]) == 1234
    assert value(families["fleetwatch_batches_deadlettered"]) == 2
    assert value(families["fleetwatch_logs_rejected"]) == 7
    assert value(families["fleetwatch_batches_duplicate"]) == 0
    assert families["fleetwatch_samples_ingested"][0].name == "fleetwatch_samples_ingested_total"
    assert value(families["fleetwatch_up"], component="redis") == 1
    assert value(families["fleetwatch_up"], component="database") == 1


def test_metrics_report_streams_deadletters_workers_queues_and_hosts(anonymous, db, metrics_client):
    key = streams.stream_key(streams.METRICS)
    metrics_client.xgroup_create(key, streams.CONSUMER_GROUP, id="0", mkstream=True)
    for _ in range(4):
        metrics_client.xadd(key, {b"b": b"x"})
    metrics_client.xreadgroup(streams.CONSUMER_GROUP, "c1", {key: ">"}, count=1)
    metrics_client.xadd(streams.stream_key(streams.DEAD_LETTER), {b"b": b"x", b"reason": b"bad"})
    Worker(["ingest"], connection=metrics_client, name="w1").register_birth()
    jobs_guard.get_queue("maintenance", metrics_client).enqueue(noop)
    make_host("web-1")
    make_host("old-1", seen_ago=timedelta(hours=2))
    make_host("old-2", seen_ago=timedelta(hours=2))
    families = scrape(anonymous)
    assert value(families["fleetwatch_stream_length"], stream="metrics") == 4
    assert value(families["fleetwatch_stream_lag"], stream="metrics") == 3
    assert value(families["fleetwatch_stream_pending"], stream="metrics") == 1
    assert value(families["fleetwatch_stream_length"], stream="logs") == 0
    assert value(families["fleetwatch_deadletter_length"]) == 1
    assert value(families["fleetwatch_workers"]) == 1
    assert value(families["fleetwatch_queue_depth"], queue="maintenance") == 1
    assert value(families["fleetwatch_queue_depth"], queue="ingest") == 0
    assert value(families["fleetwatch_hosts"], state="up") == 1
    assert value(families["fleetwatch_hosts"], state="down") == 2


def test_metrics_without_redis_still_answer_with_redis_down(anonymous, db, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    health._client.cache_clear()
    families = scrape(anonymous)
    health._client.cache_clear()
    assert value(families["fleetwatch_up"], component="redis") == 0
    assert "fleetwatch_samples_ingested" not in families
    assert "fleetwatch_hosts" in families
