"""OpenTelemetry GenAI in: the real OTel SDK's metric and span exporters, onto the LLM series contract."""

from __future__ import annotations

import json
import math
import time

import pytest
from django.contrib.auth.models import User
from django.test import Client
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from alerting_worker.ingest import stats
from alerting_worker.ingest.metrics_handler import CACHE
from shared import llm_series
from tests.members import issue_token, member
from tests.prometheus_api.test_otlp import drain

# The semantic conventions' advisory buckets of gen_ai.client.operation.duration.
SEMCONV_DURATION_BOUNDS = [
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
]


def _operator_token(name: str) -> str:
    return issue_token(
        member(User.objects.create_user(name, password=f"{name}-password-1"), "operator"), "operator"
    )


def _query(client: Client, promql: str) -> dict[tuple[str, ...], float]:
    body = client.get("/prometheus/api/v1/query", {"query": promql, "time": time.time()}).json()
    assert body["status"] == "success", body
    return {tuple(r["metric"].values()): float(r["value"][1]) for r in body["data"]["result"]}


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_genai_metrics_of_the_otel_sdk_become_the_contract_series(live_server, redis_client):
    token = _operator_token("genai-metrics")
    CACHE.clear()
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(
            endpoint=f"{live_server.url}/otlp/v1/metrics", headers={"Authorization": f"Token {token}"}
        ),
        export_interval_millis=3_600_000,
    )
    resource = Resource.create(
        {"service.name": "chatbot", "host.name": "app-1", "fleetwatch.organization": "acme"}
    )
    meters = MeterProvider(resource=resource, metric_readers=[reader])
    meter = meters.get_meter("opentelemetry.instrumentation.openai_v2")
    duration = meter.create_histogram(
        "gen_ai.client.operation.duration",
        unit="s",
        explicit_bucket_boundaries_advisory=SEMCONV_DURATION_BOUNDS,
    )
    tokens = meter.create_histogram("gen_ai.client.token.usage", unit="{token}")
    ttft = meter.create_histogram(
        "gen_ai.server.time_to_first_token",
        unit="s",
        explicit_bucket_boundaries_advisory=list(llm_series.TTFT_BOUNDS),
    )
    base = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o",
        "server.address": "api.openai.com",
    }
    for seconds, response_model in (
        (0.3, "gpt-4o-2024-08-06"),
        (0.3, "gpt-4o-2024-08-06"),
        (1.5, "gpt-4o-2024-11-20"),
    ):
        # Points differing in the response model collapse onto one contract series (the request model).
        duration.record(seconds, {**base, "gen_ai.response.model": response_model})
    duration.record(0.05, {**base, "error.type": "timeout"})
    for kind, value in (("input", 100), ("input", 50), ("output", 20), ("output", 30)):
        tokens.record(value, {**base, "gen_ai.token.type": kind})
    for seconds in (0.2, 0.3):
        ttft.record(seconds, base)
    duration.record(0.7, {"gen_ai.operation.name": "chat"})  # no model: counted, not mapped
    try:
        assert meters.force_flush(timeout_millis=20_000)
    finally:
        meters.shutdown()

    drain(redis_client)
    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    assert _query(client, 'sum by (status) (llm_requests_total{model="gpt-4o",organization="acme"})') == {
        ("ok",): 3.0,
        ("error",): 1.0,
    }
    assert _query(client, "sum(llm_input_tokens_total)") == {(): 150.0}
    assert _query(client, "sum(llm_output_tokens_total)") == {(): 50.0}
    # GenAI metrics carry no cost: every token is unpriced too (priced on read).
    assert _query(client, "sum(llm_unpriced_input_tokens_total)") == {(): 150.0}
    assert _query(client, "sum(llm_request_duration_seconds_count)") == {(): 4.0}
    assert _query(client, "sum(llm_request_duration_seconds_sum)")[()] == pytest.approx(2.15)
    buckets = {
        key[-1]: value
        for key, value in _query(client, "sum by (le) (llm_request_duration_seconds_bucket)").items()
    }
    # Contract bounds: 1.0 lies between the source's 0.64 and 1.28 (3 each), 0.05 a quarter
    # of the way from 0.04 (0) to 0.08 (1): interpolated as histogram_quantile would.
    assert (buckets["1.0"], buckets["60.0"], buckets["+Inf"]) == (3.0, 4.0, 4.0)
    assert buckets["0.05"] == pytest.approx(0.25)
    ttft_buckets = {
        k[-1]: v for k, v in _query(client, "sum by (le) (llm_time_to_first_token_seconds_bucket)").items()
    }
    assert (ttft_buckets["0.1"], ttft_buckets["0.25"], ttft_buckets["0.5"]) == (0.0, 1.0, 2.0)
    p95 = _query(client, "histogram_quantile(0.95, sum by (le) (llm_time_to_first_token_seconds_bucket))")
    assert 0.25 < p95[()] <= 0.5
    # The original series are stored too, under their OTLP names.
    assert _query(client, "sum(gen_ai_client_operation_duration_count)") == {(): 5.0}
    counted = stats.read(redis_client)
    # One per export (force_flush, then shutdown's final export).
    assert counted["otlp_genai_points_without_model"] == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_genai_spans_of_the_otel_sdk_become_counters_and_log_records(live_server, redis_client):
    token = _operator_token("genai-spans")
    CACHE.clear()
    exporter = OTLPSpanExporter(
        endpoint=f"{live_server.url}/otlp/v1/traces", headers={"Authorization": f"Token {token}"}
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "agentic", "host.name": "app-2"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("opentelemetry.instrumentation.openai_v2")
    start = time.time_ns() - 10_000_000_000
    ids = []
    for number, (seconds, tokens_in, tokens_out, failed) in enumerate(
        ((0.4, 12, 34, False), (2.0, 8, 6, False), (0.1, None, None, True))
    ):
        attrs = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "llama-3-8b",
            "gen_ai.response.id": f"chatcmpl-{number}",
            "fleetwatch.organization": "beta",
        }
        if tokens_in is not None:
            attrs |= {"gen_ai.usage.input_tokens": tokens_in, "gen_ai.usage.output_tokens": tokens_out}
        span = tracer.start_span("chat llama-3-8b", attributes=attrs, start_time=start)
        if failed:
            span.set_attribute("error.type", "RateLimitError")
            span.set_status(Status(StatusCode.ERROR, "429 from upstream"))
        ids.append(
            (
                format(span.get_span_context().trace_id, "032x"),
                format(span.get_span_context().span_id, "016x"),
            )
        )
        span.end(end_time=start + int(seconds * 1e9))
    with tracer.start_as_current_span("GET /health"):
        pass  # not a GenAI span: counted and acknowledged
    provider.shutdown()

    drain(redis_client)
    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    assert _query(client, 'sum by (status) (llm_requests_total{model="llama-3-8b",organization="beta"})') == {
        ("ok",): 2.0,
        ("error",): 1.0,
    }
    assert _query(client, "sum(llm_input_tokens_total)") == {(): 20.0}
    assert _query(client, "sum(llm_output_tokens_total)") == {(): 40.0}
    assert _query(client, "sum(llm_unpriced_output_tokens_total)") == {(): 40.0}
    buckets = {
        k[-1]: v for k, v in _query(client, "sum by (le) (llm_request_duration_seconds_bucket)").items()
    }
    assert (buckets["0.1"], buckets["0.5"], buckets["1.0"], buckets["2.5"], buckets["+Inf"]) == (
        1,
        2,
        2,
        3,
        3,
    )
    assert _query(client, "sum(llm_request_duration_seconds_sum)")[()] == pytest.approx(2.5)

    trace_id, span_id = ids[2]
    found = client.get("/api/v1/logs/search", {"trace_id": trace_id}).json()
    assert found["count"] == 1
    record = found["data"][0]
    assert (record["level"], record["span_id"], record["request_id"], record["host"]) == (
        "ERROR",
        span_id,
        "chatcmpl-2",
        "app-2",
    )
    assert record["attributes"]["error.type"] == "RateLimitError"
    assert record["attributes"]["status_message"] == "429 from upstream"
    counted = stats.read(redis_client)
    assert (counted["otlp_spans_genai"], counted["otlp_spans_other"]) == (3, 1)


def _json_spans(attributes: list[dict]) -> bytes:
    now = time.time_ns()
    span = {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "name": "chat",
        "startTimeUnixNano": str(now - 500_000_000),
        "endTimeUnixNano": str(now),
        "attributes": attributes,
    }
    document = {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": [span]}]}]}
    return json.dumps(document).encode()


def test_a_retried_traces_body_counts_once_and_json_is_accepted(api, redis_client):
    body = _json_spans(
        [
            {"key": "gen_ai.request.model", "value": {"stringValue": "m-1"}},
            {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "7"}},
        ]
    )
    for _ in range(2):
        response = api.generic("POST", "/otlp/v1/traces", body, content_type="application/json")
        assert response.status_code == 200, response.content
        assert response.json() == {}
    totals = redis_client.hgetall(next(iter(redis_client.scan_iter("*llm-spans*totals*"))))
    by_name = {json.loads(field)[1]: float(value) for field, value in totals.items()}
    assert (by_name["llm_requests_total"], by_name["llm_input_tokens_total"]) == (1.0, 7.0)
    # A different request adds on.
    other = _json_spans([{"key": "gen_ai.request.model", "value": {"stringValue": "m-1"}}])
    assert api.generic("POST", "/otlp/v1/traces", other, content_type="application/json").status_code == 200
    totals = redis_client.hgetall(next(iter(redis_client.scan_iter("*llm-spans*totals*"))))
    assert {json.loads(f)[1]: float(v) for f, v in totals.items()}["llm_requests_total"] == 2.0


@pytest.mark.parametrize(
    "attributes",
    [
        [
            {"key": "gen_ai.request.model", "value": {"stringValue": "m"}},
            {"key": "gen_ai.usage.input_tokens", "value": {"stringValue": "lots"}},
        ],
        [
            {"key": "gen_ai.request.model", "value": {"stringValue": "m"}},
            {"key": "gen_ai.usage.output_tokens", "value": {"doubleValue": -3}},
        ],
        [{"key": "gen_ai.request.model", "value": {"arrayValue": {"values": [{"intValue": "1"}]}}}],
        [{"key": "gen_ai.request.model", "value": {"stringValue": "x" * 5000}}],
    ],
)
def test_hostile_span_attributes_are_refused_values_not_requests(api, redis_client, attributes):
    response = api.generic(
        "POST", "/otlp/v1/traces", _json_spans(attributes), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    assert stats.read(redis_client)["otlp_spans_genai"] == 1


@pytest.mark.parametrize(
    ("content_type", "body", "named"),
    [
        ("application/json", b"{not json", "ExportTraceServiceRequest"),
        ("application/x-protobuf", b"\xff\xff\xff", "ExportTraceServiceRequest"),
        ("text/plain", b"x", "Content-Type"),
    ],
)
def test_bad_traces_bodies_are_refused_naming_the_problem(api, redis_client, content_type, body, named):
    response = api.generic("POST", "/otlp/v1/traces", body, content_type=content_type)
    assert response.status_code == 400
    assert named in response.json()["error"]


def test_traces_need_a_token(client, redis_client):
    response = client.generic("POST", "/otlp/v1/traces", _json_spans([]), content_type="application/json")
    assert response.status_code in (401, 403)


@pytest.mark.parametrize(
    ("source", "bounds", "total", "expected"),
    [
        # Same bounds: exact.
        ([(0.1, 2), (1.0, 5), (math.inf, 6)], (0.1, 1.0), 6, [(0.1, 2), (1.0, 5), (math.inf, 6)]),
        # Between two bounds: linear; below the first: from 0; above the last finite: its count.
        ([(0.2, 4), (0.4, 8)], (0.1, 0.3, 5.0), 9, [(0.1, 2), (0.3, 6), (5.0, 8), (math.inf, 9)]),
        # No finite bucket at all: nothing below +Inf.
        ([(math.inf, 3)], (1.0,), 3, [(1.0, 0), (math.inf, 3)]),
    ],
)
def test_rebucketing_is_exact_on_shared_bounds_and_linear_between(source, bounds, total, expected):
    got = llm_series.rebucket(source, bounds, total)
    assert [(le, round(count, 9)) for le, count in got] == [(float(le), float(c)) for le, c in expected]


def _json_duration_metrics(resource: dict[str, object], count: int, start: float, at: float) -> bytes:
    """One resource's cumulative gen_ai.client.operation.duration (model m-two), as OTLP/JSON."""
    attributes = [
        {"key": k, "value": {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}}
        for k, v in resource.items()
    ]
    point = {
        "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "m-two"}}],
        "startTimeUnixNano": str(int(start * 1e9)),
        "timeUnixNano": str(int(at * 1e9)),
        "count": str(count),
        "sum": 0.3 * count,
        "bucketCounts": ["0", str(count), "0"],
        "explicitBounds": [0.1, 1.0],
    }
    metric = {
        "name": "gen_ai.client.operation.duration",
        "unit": "s",
        "histogram": {"aggregationTemporality": 2, "dataPoints": [point]},
    }
    document = {
        "resourceMetrics": [{"resource": {"attributes": attributes}, "scopeMetrics": [{"metrics": [metric]}]}]
    }
    return json.dumps(document).encode()


# Two processes of one service, neither with host.name nor service.instance.id (both land on
# the default host): only their other resource attributes differ.
PROCESS_A = {"service.name": "chat", "process.pid": 101}
PROCESS_B = {"service.name": "chat", "process.pid": 202}


@pytest.mark.django_db(transaction=True)
def test_two_resources_without_host_name_keep_their_own_cumulative_series(api, redis_client):
    CACHE.clear()
    now = time.time()
    start_a, start_b = now - 120, now - 110
    for at, count_a, count_b in ((now - 60, 3, 5), (now - 30, 4, 6)):
        for resource, start, count in ((PROCESS_A, start_a, count_a), (PROCESS_B, start_b, count_b)):
            body = _json_duration_metrics(resource, count, start, at)
            response = api.generic("POST", "/otlp/v1/metrics", body, content_type="application/json")
            assert response.status_code == 200, response.content
    drain(redis_client)
    got = _query(api, 'llm_requests_total{model="m-two"}')
    assert sorted(got.values()) == [4.0, 6.0], got
    assert _query(api, 'sum(llm_requests_total{model="m-two"})') == {(): 10.0}
    instances = _query(
        api, 'count by (service, instance) (llm_request_duration_seconds_count{model="m-two"})'
    )
    assert len(instances) == 2 and all(key[0] == "chat" for key in instances), instances
    # With service.instance.id given, it is the instance label.
    body = _json_duration_metrics({**PROCESS_A, "service.instance.id": "pod-7"}, 2, now - 20, now - 10)
    assert api.generic("POST", "/otlp/v1/metrics", body, content_type="application/json").status_code == 200
    drain(redis_client)
    assert _query(api, 'sum(llm_requests_total{model="m-two",instance="pod-7"})') == {(): 2.0}


@pytest.mark.django_db(transaction=True)
def test_metrics_of_one_process_do_not_silence_the_spans_of_another_on_the_same_host(api, redis_client):
    CACHE.clear()
    now = time.time()
    body = _json_duration_metrics(PROCESS_A, 3, now - 60, now - 30)
    assert api.generic("POST", "/otlp/v1/metrics", body, content_type="application/json").status_code == 200
    spans = json.loads(_json_spans([{"key": "gen_ai.request.model", "value": {"stringValue": "m-two"}}]))
    for resource_spans, resource in zip(spans["resourceSpans"], (PROCESS_B,), strict=True):
        resource_spans["resource"]["attributes"] = [
            {"key": k, "value": {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}}
            for k, v in resource.items()
        ]
    response = api.generic(
        "POST", "/otlp/v1/traces", json.dumps(spans).encode(), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    # The same process's spans are left to its metrics (no double count).
    for resource_spans in spans["resourceSpans"]:
        resource_spans["resource"]["attributes"][1]["value"] = {"intValue": "101"}
    spans["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["spanId"] = "00000000000000aa"
    response = api.generic(
        "POST", "/otlp/v1/traces", json.dumps(spans).encode(), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    drain(redis_client)
    by_source = _query(api, 'sum by (source, instance) (llm_requests_total{model="m-two"})')
    assert sorted(by_source.values()) == [1.0, 3.0], by_source
    assert stats.read(redis_client)["otlp_genai_span_series_left_to_metrics"] >= 1


def _json_point_metrics(name: str, total: object, count: str, extra: dict[str, str], model: str) -> bytes:
    now = time.time()
    point = {
        "attributes": [
            {"key": k, "value": {"stringValue": v}}
            for k, v in {"gen_ai.request.model": model, **extra}.items()
        ],
        "startTimeUnixNano": str(int((now - 60) * 1e9)),
        "timeUnixNano": str(int(now * 1e9)),
        "count": count,
        "sum": total,
        "bucketCounts": ["0", count],
        "explicitBounds": [1.0],
    }
    metric = {"name": name, "histogram": {"aggregationTemporality": 2, "dataPoints": [point]}}
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "vals"}}]}
    return json.dumps(
        {"resourceMetrics": [{"resource": resource, "scopeMetrics": [{"metrics": [metric]}]}]}
    ).encode()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("total", [-5, "NaN", "-Infinity", "Infinity", 1e300])
def test_genai_metric_points_with_a_bad_sum_are_refused_and_counted(api, redis_client, total):
    CACHE.clear()
    tokens = {"gen_ai.token.type": "input"}
    bad = _json_point_metrics("gen_ai.client.token.usage", total, "2", tokens, "m-bad")
    good = _json_point_metrics("gen_ai.client.token.usage", 40, "2", tokens, "m-good")
    for body in (bad, good):
        response = api.generic("POST", "/otlp/v1/metrics", body, content_type="application/json")
        assert response.status_code == 200, response.content
    drain(redis_client)
    assert stats.read(redis_client)["otlp_genai_point_values_refused"] == 1
    assert _query(api, "sum by (model) (llm_input_tokens_total)") == {("m-good",): 40.0}


def test_a_negative_genai_metric_count_is_a_400(api, redis_client):
    body = _json_point_metrics("gen_ai.client.operation.duration", 1.0, "-2", {}, "m")
    response = api.generic("POST", "/otlp/v1/metrics", body, content_type="application/json")
    assert response.status_code == 400, response.content


@pytest.mark.django_db(transaction=True)
def test_span_token_counts_above_1e9_are_refused_and_counted(api, redis_client):
    CACHE.clear()
    attributes = [
        {"key": "gen_ai.request.model", "value": {"stringValue": "m-big"}},
        {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "1000000001"}},
        {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "1000000000"}},
        {"key": "gen_ai.server.time_to_first_token", "value": {"doubleValue": 1e12}},
    ]
    response = api.generic(
        "POST", "/otlp/v1/traces", _json_spans(attributes), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    drain(redis_client)
    counted = stats.read(redis_client)
    assert counted["otlp_genai_span_values_refused"] == 2  # the input tokens and the time to first token
    assert _query(api, 'sum(llm_requests_total{model="m-big"})') == {(): 1.0}  # the request still counts
    assert _query(api, 'sum(llm_output_tokens_total{model="m-big"})') == {(): 1e9}  # the bound itself is fine
    assert _query(api, 'sum(llm_input_tokens_total{model="m-big"})') == {}
