"""Measure the OpenTelemetry GenAI mapping: CPU per span and per metric point, and the running totals.

    REDIS_URL=redis://127.0.0.1:6379/<db> .venv/bin/python bench/otlp_genai.py [--spans 1000] [--rounds 5]

In process, no web server: an ExportTraceServiceRequest of ``--spans`` GenAI spans (10 models,
3 organisations, both statuses) is decoded from protobuf and mapped (spans_to_figures), an
ExportMetricsServiceRequest of as many histogram points is mapped (genai_series), and the
span increments are added to the Redis running totals (span_totals.totals, one Lua call per
request, under a throwaway stream prefix that is deleted afterwards). Each figure is the median
over rounds (CPU time of this process for the mapping; wall time for the Redis call).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "collector_server.settings")
os.environ.setdefault("DEBUG", "true")  # no SECRET_KEY needed: nothing is served
os.environ["FLEETWATCH_STREAM_PREFIX"] = f"bench-genai-{uuid.uuid4().hex[:8]}"

import django

django.setup()

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (  # noqa: E402
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402

from collector_server.prometheus_api import genai_metrics, genai_spans, span_totals  # noqa: E402
from collector_server.redis_conn import get_stream_redis  # noqa: E402
from shared import streams  # noqa: E402


def trace_request(spans: int) -> bytes:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    request.resource_spans[0].resource.attributes.add(key="host.name").value.string_value = "bench-app"
    now = time.time_ns()
    for i in range(spans):
        span = scope.spans.add()
        span.trace_id = uuid.uuid4().bytes
        span.span_id = uuid.uuid4().bytes[:8]
        span.name = "chat"
        span.start_time_unix_nano = now - 1_000_000_000
        span.end_time_unix_nano = now - 1_000_000_000 + (i % 50) * 20_000_000
        span.status.code = 2 if i % 20 == 0 else 1
        for key, value in (
            ("gen_ai.operation.name", "chat"),
            ("gen_ai.request.model", f"model-{i % 10}"),
            ("gen_ai.usage.input_tokens", 100 + i % 7),
            ("gen_ai.usage.output_tokens", 20 + i % 5),
            ("fleetwatch.organization", f"org-{i % 3}"),
            ("gen_ai.response.id", f"resp-{i}"),
        ):
            attribute = span.attributes.add(key=key)
            if isinstance(value, int):
                attribute.value.int_value = value
            else:
                attribute.value.string_value = value
    return request.SerializeToString()


def metrics_request(points: int) -> bytes:
    request = ExportMetricsServiceRequest()
    resource = request.resource_metrics.add()
    resource.resource.attributes.add(key="host.name").value.string_value = "bench-app"
    metric = resource.scope_metrics.add().metrics.add()
    metric.name = "gen_ai.client.operation.duration"
    metric.histogram.aggregation_temporality = 2
    now = time.time_ns()
    bounds = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
    for i in range(points):
        point = metric.histogram.data_points.add()
        point.start_time_unix_nano, point.time_unix_nano = now - 60_000_000_000, now
        point.explicit_bounds.extend(bounds)
        point.bucket_counts.extend([i % 3] * (len(bounds) + 1))
        point.count, point.sum = sum(point.bucket_counts), 1.5 * i
        point.attributes.add(key="gen_ai.request.model").value.string_value = f"model-{i % 10}"
        point.attributes.add(key="server.address").value.string_value = f"api-{i}"
    return request.SerializeToString()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spans", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    traces, metrics = trace_request(args.spans), metrics_request(args.spans)
    span_us, point_us, redis_ms, series = [], [], [], 0
    try:
        for _ in range(args.rounds):
            started = time.process_time()
            increments, _ = genai_spans.spans_to_figures(
                ExportTraceServiceRequest.FromString(traces), Counter()
            )
            span_us.append((time.process_time() - started) / args.spans * 1e6)
            started = time.process_time()
            genai_metrics.genai_series(ExportMetricsServiceRequest.FromString(metrics), Counter())
            point_us.append((time.process_time() - started) / args.spans * 1e6)
            started = time.perf_counter()
            out = span_totals.totals(increments, uuid.uuid4().bytes, None, Counter())
            redis_ms.append((time.perf_counter() - started) * 1000)
            series = sum(len(v) for v in out.values())
    finally:
        client = get_stream_redis()
        for key in client.scan_iter(f"{streams.prefix()}:*"):
            client.delete(key)
    print(f"{args.spans} GenAI spans per request, {args.rounds} rounds (medians)")
    print(f"  decode + map one span (CPU):             {statistics.median(span_us):8.1f} µs")
    print(f"  decode + map one histogram point (CPU):  {statistics.median(point_us):8.1f} µs")
    print(f"  running totals, one Lua call ({series} series): {statistics.median(redis_ms):6.1f} ms")
    per_request = statistics.median(span_us) * args.spans / 1000 + statistics.median(redis_ms)
    print(f"  => about {args.spans / per_request * 1000:,.0f} spans/s per web process (mapping + totals)")


if __name__ == "__main__":
    main()
