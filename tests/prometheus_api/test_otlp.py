"""OTLP/HTTP in: the OpenTelemetry Python SDK's exporters push metrics and logs into fleetwatch."""

from __future__ import annotations

import gzip
import json
import logging
import time

import pytest
from django.contrib.auth.models import User
from django.test import Client
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from alerting_worker.ingest.consumer import StreamConsumer
from alerting_worker.ingest.jobs import handler_for
from alerting_worker.ingest.metrics_handler import CACHE
from shared import streams
from tests.members import issue_token, member

RESOURCE = Resource.create({"service.name": "shop", "host.name": "otel-1", "deployment.environment": "prod"})


def drain(redis_client) -> None:
    for kind in (streams.METRICS, streams.LOGS):
        StreamConsumer(redis_client, kind, handler_for(kind), consumer="t", block_ms=0).drain(max_seconds=20)


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*LoggingHandler.*:DeprecationWarning")
def test_the_sdk_exporters_metrics_and_logs_are_queryable_and_searchable(live_server, redis_client):
    token = issue_token(
        member(User.objects.create_user("otel", password="otel-password-1"), "operator"), "operator"
    )
    headers = {"Authorization": f"Token {token}"}
    CACHE.clear()

    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{live_server.url}/otlp/v1/metrics", headers=headers),
        export_interval_millis=3_600_000,
    )
    meters = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    meter = meters.get_meter("shop.checkout")
    orders = meter.create_counter("shop.orders", unit="1")
    latency = meter.create_histogram("shop.latency", unit="s")
    orders.add(5, {"method": "card"})
    orders.add(2, {"method": "card"})
    for value in (0.003, 0.02, 0.02, 0.4):
        latency.record(value)
    assert meters.force_flush(timeout_millis=20_000)

    logs = LoggerProvider(resource=RESOURCE)
    logs.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{live_server.url}/otlp/v1/logs", headers=headers))
    )
    logger = logging.getLogger("shop.payments")
    logger.propagate = False
    handler = LoggingHandler(level=logging.INFO, logger_provider=logs)
    logger.addHandler(handler)
    tracer = TracerProvider(resource=RESOURCE).get_tracer("shop")
    try:
        with tracer.start_as_current_span("pay") as span:
            logger.error("card declined", extra={"order_id": "o-17"})
            trace_id = format(span.get_span_context().trace_id, "032x")
            span_id = format(span.get_span_context().span_id, "016x")
        assert logs.force_flush(timeout_millis=20_000)
    finally:
        logger.removeHandler(handler)
        meters.shutdown()
        logs.shutdown()

    drain(redis_client)
    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    result = client.get(
        "/prometheus/api/v1/query", {"query": "shop_orders_total", "time": time.time()}
    ).json()
    assert [
        (r["metric"]["host"], r["metric"]["method"], r["metric"]["service_name"], r["value"][1])
        for r in result["data"]["result"]
    ] == [("otel-1", "card", "shop", "7")]
    # The SDK's default boundaries (0, 5, 10, ...): every observation is in le="5.0".
    buckets = client.get(
        "/prometheus/api/v1/query", {"query": "shop_latency_bucket", "time": time.time()}
    ).json()
    cumulative = {r["metric"]["le"]: r["value"][1] for r in buckets["data"]["result"]}
    assert (cumulative["0.0"], cumulative["5.0"], cumulative["+Inf"]) == ("0", "4", "4")

    found = client.get("/api/v1/logs/search", {"trace_id": trace_id}).json()
    assert found["count"] == 1
    record = found["data"][0]
    assert (record["message"], record["level"], record["service"], record["host"]) == (
        "card declined",
        "ERROR",
        "shop",
        "otel-1",
    )
    assert record["span_id"] == span_id
    assert record["attributes"]["order_id"] == "o-17"


def test_otlp_json_with_gzip_is_accepted(api, redis_client):
    now_ns = time.time_ns()
    document = {
        "resourceLogs": [
            {
                "resource": {"attributes": [{"key": "host.name", "value": {"stringValue": "json-1"}}]},
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": str(now_ns),
                                "severityNumber": 17,
                                "body": {"stringValue": "disk full"},
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                            }
                        ]
                    }
                ],
            }
        ]
    }
    response = api.generic(
        "POST",
        "/otlp/v1/logs",
        gzip.compress(json.dumps(document).encode()),
        content_type="application/json",
        HTTP_CONTENT_ENCODING="gzip",
    )
    assert response.status_code == 200, response.content
    assert response.json() == {}
    from shared.wire import decode_batch

    entries = redis_client.xrange(streams.stream_key(streams.LOGS))
    batch = decode_batch(entries[0][1][b"b"])
    assert batch.host == "json-1"
    assert batch.logs[0]["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert batch.logs[0]["level"] == "ERROR"


@pytest.mark.parametrize(
    ("content_type", "body", "named"),
    [
        ("text/plain", b"x", "Content-Type"),
        ("application/json", b"{not json", "ExportLogsServiceRequest"),
        (
            "application/json",
            b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "zz"}]}]}]}',
            "traceId",
        ),
        ("application/x-protobuf", b"\xff\xff\xff", "ExportLogsServiceRequest"),
    ],
)
def test_bad_otlp_bodies_are_refused_naming_the_problem(api, redis_client, content_type, body, named):
    response = api.generic("POST", "/otlp/v1/logs", body, content_type=content_type)
    assert response.status_code == 400
    assert named in response.json()["error"]
