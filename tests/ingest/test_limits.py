"""Per-host limits: what exceeds one is refused alone, counted per host and reason, and shown."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from alerting_worker.ingest.consumer import StreamConsumer
from alerting_worker.ingest.limits import RefusalLog
from alerting_worker.ingest.logs_handler import LOGS_HANDLER
from alerting_worker.ingest.metrics_handler import MetricsHandler
from collector_server.monitoring.models import Host, IngestedBatch, Series
from shared import host_limits, streams
from shared.wire import encode_batch, series_dict
from tests.members import issue_token, member

from .conftest import make_batch, sample_count

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("clean_tables", "wire")]


def drain(redis_client, kind=streams.METRICS, **options):
    handler = MetricsHandler() if kind == streams.METRICS else LOGS_HANDLER
    return StreamConsumer(redis_client, kind, handler, consumer="c1", block_ms=0, **options).drain(
        max_seconds=10
    )


def series_batch(host: str, names: list[str], labels: dict[str, str] | None = None) -> bytes:
    now = time.time()
    return make_batch(
        agent=f"agent-{host}", host=host, series=[series_dict(name, [[now, 1.0]], labels) for name in names]
    )


def refused(agent_id: str, redis_client) -> dict[str, int]:
    found = host_limits.read(redis_client, agent_id)
    return found.counts if found else {}


def test_a_long_label_value_refuses_that_series_and_stores_the_rest(redis_client, metrics_stream, settings):
    settings.LIMIT_LABEL_VALUE_LENGTH = 100
    now = time.time()
    series = [
        series_dict("app_ok", [[now, 1.0]], {"path": "/"}),
        series_dict("app_long", [[now, 2.0]], {"path": "x" * 200_000}),
        series_dict("app_many", [[now, 3.0]], {f"l{i}": "v" for i in range(40)}),
    ]
    redis_client.xadd(metrics_stream, {"b": make_batch(agent="a1", host="web-1", series=series)})
    result = drain(redis_client)
    assert (result.batches, result.dead_lettered, result.rows) == (1, 0, 1)
    assert list(Series.objects.values_list("name", flat=True)) == ["app_ok"]
    assert refused("a1", redis_client) == {"label_value_length": 1, "labels_per_series": 1}


def test_new_series_per_hour_and_total_per_host_are_bounded_per_host(redis_client, metrics_stream, settings):
    settings.LIMIT_NEW_SERIES_PER_HOST_PER_HOUR = 3
    settings.LIMIT_SERIES_PER_HOST = 4
    redis_client.xadd(metrics_stream, {"b": series_batch("noisy", [f"m{i}" for i in range(5)])})
    redis_client.xadd(metrics_stream, {"b": series_batch("quiet", ["m0", "m1"])})
    drain(redis_client)
    noisy = Host.objects.get(hostname="noisy")
    assert Series.objects.filter(host=noisy).count() == 3
    assert Series.objects.filter(host__hostname="quiet").count() == 2  # another host is not affected
    assert refused("agent-noisy", redis_client) == {"new_series_per_hour": 2}
    # The host keeps sending its admitted series; they are stored.
    redis_client.xadd(metrics_stream, {"b": series_batch("noisy", ["m0", "m1", "m2"])})
    assert drain(redis_client).rows == 3
    # An hour later the rate allows more, and the total caps them.
    Series.objects.filter(host=noisy).update(created_at=timezone.now() - timedelta(hours=2))
    redis_client.xadd(metrics_stream, {"b": series_batch("noisy", [f"m{i}" for i in range(5)])})
    drain(redis_client)
    assert Series.objects.filter(host=noisy).count() == 4
    assert refused("agent-noisy", redis_client) == {"new_series_per_hour": 2, "series_per_host": 1}
    assert sample_count() == 2 + 3 + 3 + 4


def test_log_attrs_over_the_limit_refuse_the_record_not_the_batch(redis_client, settings):
    settings.LIMIT_LOG_ATTRS_BYTES = 1000
    now = time.time()
    records = [
        {"ts": now, "level": "INFO", "message": "small", "attrs": {"k": "v"}},
        {"ts": now, "level": "INFO", "message": "huge", "attrs": {"k": "v" * 10_000}},
    ]
    data = encode_batch(
        kind="logs", agent_id="a2", host="web-2", agent_version="", epoch=1, seq=1, sent_at=now, logs=records
    )
    redis_client.xadd(streams.stream_key(streams.LOGS), {"b": data})
    result = drain(redis_client, streams.LOGS)
    assert (result.batches, result.rows, result.dead_lettered) == (1, 1, 0)
    assert refused("a2", redis_client) == {"log_attrs_bytes": 1}
    assert IngestedBatch.objects.get(agent_id="a2", kind="logs").rows == 1


def test_a_batch_over_the_size_limit_is_dead_lettered_and_counted_for_its_host(redis_client, metrics_stream):
    redis_client.xadd(metrics_stream, {"b": make_batch(agent="a3", host="big")})
    redis_client.xadd(metrics_stream, {"b": make_batch(agent="a4", host="small")})
    size = len(make_batch(agent="a3", host="big"))
    big = make_batch(
        agent="a3", host="big", series=[series_dict(f"m{i}", [[time.time(), 1.0]]) for i in range(50)]
    )
    redis_client.xadd(metrics_stream, {"b": big})
    result = drain(redis_client, max_batch_bytes=size + 100)
    assert (result.batches, result.dead_lettered) == (2, 1)
    reason = redis_client.xrange(streams.stream_key(streams.DEAD_LETTER))[0][1][b"reason"].decode()
    assert reason == f"batch of {len(big)} bytes exceeds LIMIT_BATCH_BYTES ({size + 100})"
    assert refused("a3", redis_client) == {"batch_bytes": 1}


def test_refusals_show_on_metrics_the_hosts_api_and_the_admin_page(redis_client, metrics_stream, settings):
    settings.LIMIT_LABELS_PER_SERIES = 1
    redis_client.xadd(metrics_stream, {"b": make_batch(agent="a5", host="web-5", series=[
        series_dict("app_x", [[time.time(), 1.0]], {"a": "1", "b": "2"})])})  # fmt: skip
    redis_client.xadd(metrics_stream, {"b": make_batch(agent="a6", host="web-6")})
    drain(redis_client)
    # An anonymous scrape sums over every host (no host names); a token of the host's
    # organisation sees it per host.
    text = APIClient().get("/metrics").content.decode()
    assert 'fleetwatch_limit_refused_total{reason="labels_per_series"} 1' in text
    assert "web-5" not in text
    member(User.objects.create_user("viewer-5"), "viewer")
    scraper = APIClient()
    scraper.credentials(
        HTTP_AUTHORIZATION=f"Bearer {issue_token(User.objects.get(username='viewer-5'), 'viewer')}"
    )
    text = scraper.get("/metrics").content.decode()
    assert 'fleetwatch_limit_refused_total{host="web-5",agent_id="a5",reason="labels_per_series"} 1' in text
    user = User.objects.create_superuser("root", password="pw-root-12345")
    api = APIClient()
    api.force_authenticate(user)
    hosts = {h["hostname"]: h for h in api.get("/api/v1/monitoring/hosts").json()["data"]}
    assert hosts["web-5"]["limit_refusals"] == {"labels_per_series": 1}
    assert hosts["web-6"]["limit_refusals"] == {}
    host = Host.objects.get(agent_id="a5")
    assert api.get(f"/api/v1/monitoring/hosts/{host.id}").json()["data"]["limit_refusals"] == {
        "labels_per_series": 1
    }
    browser = APIClient()
    browser.force_login(user)
    page = browser.get(f"/admin/monitoring/host/{host.id}/change/").content.decode()
    assert "Refused over per-host limits" in page and "labels_per_series" in page


def test_refusals_are_logged_once_per_host_per_interval(caplog):
    clock = [0.0]
    log = RefusalLog(interval=60, clock=lambda: clock[0])
    noisy = {("a1", "web-1"): {"label_value_length": 3}}
    with caplog.at_level(logging.WARNING):
        assert log.note(noisy) == 1
        assert log.note(noisy) == 0
        assert log.note({("a2", "web-2"): {"batch_bytes": 1}}) == 1  # another host has its own interval
        clock[0] = 61
        assert log.note(noisy) == 1
    lines = [r.getMessage() for r in caplog.records if "web-1" in r.getMessage()]
    assert lines[-1].endswith("label_value_length: 6")  # what was held back is reported with the next line
