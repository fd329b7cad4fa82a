"""The /models/ page end to end: an SDK app, OpenTelemetry GenAI apps and a scraped vLLM-shaped
exporter all show up, with the figures of the models API and of the known inputs (issue 15)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from collector_server.localstack import Stack
from tests.members import issue_token
from tests.model_servers import (
    ABORTED_PER_STEP,
    GENERATED_PER_REQUEST,
    OK_PER_STEP,
    PROMPT_PER_REQUEST,
    VLLM_MODEL,
    ModelServer,
)
from tests.ui.conftest import login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]
HOST = socket.gethostname()
STEPS = 3
SPANS_MODEL, SPANS_ORG = "gpt-4o-mini", "acme"
# (seconds, input tokens, output tokens, failed) of the spans app's calls.
SPANS = ((0.4, 120, 30, False), (1.2, 80, 50, False), (0.2, 10, 0, True))
METRICS_MODEL, METRICS_ORG = "claude-3-5-sonnet", "beta"
METRIC_CALLS = ((0.8, 200, 100), (2.0, 300, 150))  # (seconds, input, output), all ok
GPU_PERCENT = 63.0
SDK_MODEL, SDK_ORG = "llama-sdk-8b", "gamma"
# (seconds, input, output, cost or None, status) of the SDK app's record_inference calls.
SDK_CALLS = ((0.3, 100, 20, 0.01, "ok"), (0.6, 200, 40, 0.02, "ok"), (4.0, 50, 0, None, "error"))
# The price table's row for the spans app's model (USD per 1,000 tokens): its cost is priced.
PRICE_IN, PRICE_OUT = 0.15, 0.6
SDK_APP = """
import sys
from agent.sdk import configure_inference, record_inference
recorder = configure_inference("sdk-app", flush_interval=0.5)
for seconds, tokens_in, tokens_out, cost, status in {calls!r}:
    record_inference({model!r}, seconds, input_tokens=tokens_in, output_tokens=tokens_out, cost=cost,
                     organization={org!r}, status=status, time_to_first_token=seconds / 4)
recorder.close()
print("recorded", recorder.errors)
"""


@pytest.fixture(scope="module", autouse=True)  # before ui_stack, which reads the environment
def vllm() -> Iterator[ModelServer]:
    """A vLLM-shaped exporter; the stack's agent scrapes it with the vllm preset."""
    server = ModelServer("vllm", steps=STEPS)
    config = Path(os.environ.get("TMPDIR", "/tmp")) / f"fw-models-agent-{server.port}.toml"
    config.write_text(f'[[scrape]]\nurl = "{server.url}"\nname = "vllm"\npreset = "vllm"\ninterval = 1\n')
    previous = os.environ.get("FLEETWATCH_AGENT_CONFIG")
    os.environ["FLEETWATCH_AGENT_CONFIG"] = str(config)  # read when ui_stack builds its environment
    yield server
    server.close()
    config.unlink(missing_ok=True)
    if previous is None:
        os.environ.pop("FLEETWATCH_AGENT_CONFIG", None)
    else:
        os.environ["FLEETWATCH_AGENT_CONFIG"] = previous


def _get(stack: Stack, token: str, path: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.port}{path}", headers={"Authorization": f"Token {token}"}
    )
    with urllib.request.urlopen(request, timeout=20) as response:
        return json.loads(response.read())


def _query(stack: Stack, token: str, promql: str) -> float | None:
    body = _get(stack, token, "/prometheus/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
    result = body["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def _wait(fetch, predicate, timeout: float = 90.0):
    deadline = time.time() + timeout
    value = fetch()
    while not predicate(value) and time.time() < deadline:
        time.sleep(0.5)
        value = fetch()
    assert predicate(value), value
    return value


def _otel_apps(base: str, token: str) -> None:
    """Two apps instrumented with OpenTelemetry: one exports GenAI spans, one GenAI metrics."""
    headers = {"Authorization": f"Token {token}"}
    provider = TracerProvider(
        resource=Resource.create({"service.name": "support-bot", "host.name": "otel-spans-app"})
    )
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/otlp/v1/traces", headers=headers))
    )
    tracer = provider.get_tracer("opentelemetry.instrumentation.openai_v2")
    start = time.time_ns() - 5_000_000_000
    for seconds, tokens_in, tokens_out, failed in SPANS:
        attrs = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": SPANS_MODEL,
            "gen_ai.usage.input_tokens": tokens_in,
            "gen_ai.usage.output_tokens": tokens_out,
            "fleetwatch.organization": SPANS_ORG,
        }
        span = tracer.start_span(f"chat {SPANS_MODEL}", attributes=attrs, start_time=start)
        if failed:
            span.set_status(Status(StatusCode.ERROR, "upstream 500"))
        span.end(end_time=start + int(seconds * 1e9))
    provider.shutdown()

    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{base}/otlp/v1/metrics", headers=headers),
        export_interval_millis=3_600_000,
    )
    resource = Resource.create(
        {"service.name": "writer", "host.name": "otel-metrics-app", "fleetwatch.organization": METRICS_ORG}
    )
    meters = MeterProvider(resource=resource, metric_readers=[reader])
    meter = meters.get_meter("opentelemetry.instrumentation.anthropic")
    duration = meter.create_histogram("gen_ai.client.operation.duration", unit="s")
    tokens = meter.create_histogram("gen_ai.client.token.usage", unit="{token}")
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": METRICS_MODEL}
    for seconds, tokens_in, tokens_out in METRIC_CALLS:
        duration.record(seconds, attrs)
        tokens.record(tokens_in, {**attrs, "gen_ai.token.type": "input"})
        tokens.record(tokens_out, {**attrs, "gen_ai.token.type": "output"})
    assert meters.force_flush(timeout_millis=20_000)
    meters.shutdown()


def _gpu(base: str, token: str) -> None:
    """The serving host's GPU (this machine has none), as the agent's GPU collector names it."""
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{base}/otlp/v1/metrics", headers={"Authorization": f"Token {token}"}),
        export_interval_millis=3_600_000,
    )
    meters = MeterProvider(resource=Resource({"host.name": HOST}), metric_readers=[reader])
    meters.get_meter("gpu").create_gauge("gpu_utilization_percent").set(GPU_PERCENT, {"gpu": "0"})
    assert meters.force_flush(timeout_millis=20_000)
    meters.shutdown()


def _sdk_app(env: dict[str, str]) -> None:
    """An app recording inferences with the SDK: aggregated in process, through the agent's socket."""
    script = SDK_APP.format(calls=SDK_CALLS, model=SDK_MODEL, org=SDK_ORG)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "recorded 0", (done.stdout, done.stderr)


@pytest.fixture(scope="module")
def models_data(vllm: ModelServer, ui_stack: Stack, django_db_blocker) -> dict:
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from collector_server.inference.models import ModelPrice
    from tests.members import organization

    with django_db_blocker.unblock():
        token = issue_token(get_user_model().objects.get(username="operator"), "operator")
        ModelPrice.objects.create(
            organization=organization(),
            model=SPANS_MODEL,
            input_per_1k=PRICE_IN,
            output_per_1k=PRICE_OUT,
            valid_from=timezone.now() - timedelta(days=1),
        )
    base = f"http://127.0.0.1:{ui_stack.port}"
    _sdk_app(ui_stack.env)
    _otel_apps(base, token)
    _gpu(base, token)
    total = STEPS * (OK_PER_STEP + ABORTED_PER_STEP)
    # The exporter has done its steps and the workers stored every source.
    _wait(
        lambda: _query(ui_stack, token, f'sum(llm_requests_total{{model="{VLLM_MODEL}"}})'),
        lambda v: v == total,
    )
    _wait(
        lambda: _query(ui_stack, token, f'sum(llm_requests_total{{model="{SPANS_MODEL}"}})'), lambda v: v == 3
    )
    _wait(
        lambda: _query(ui_stack, token, f'sum(llm_requests_total{{model="{METRICS_MODEL}"}})'),
        lambda v: v == 2,
    )
    _wait(
        lambda: _query(ui_stack, token, f'sum(llm_requests_total{{model="{SDK_MODEL}"}})'), lambda v: v == 3
    )
    _wait(lambda: _query(ui_stack, token, "max(gpu_utilization_percent)"), lambda v: v == GPU_PERCENT)
    return {"token": token, "vllm_total": total}


def _open(browser, stack: Stack, path: str, **context_options):
    context = login(browser, stack, "viewer", **context_options)
    page = context.new_page()
    page.goto(f"http://127.0.0.1:{stack.port}{path}")
    page.wait_for_function(
        "() => [...document.querySelectorAll('figure.chart')].every((f) => f.dataset.drawn)", timeout=30_000
    )
    return context, page


def test_every_source_shows_up_on_the_models_page_with_charts_and_serving_hosts(
    browser, ui_stack, models_data, ui_output
):
    context, page = _open(browser, ui_stack, "/models/?range=1h")
    try:
        assert page.locator("nav a[aria-current=page]").inner_text() == "Models"
        captions = page.locator("figure.chart figcaption").all_inner_texts()
        assert captions == [
            "Requests per second",
            "Errors",
            "Tokens per second (in / out)",
            "Latency p95",
            "Time to first token p95",
            "Cost per step",
            "KV-cache usage",  # a model server reports it
        ]
        legend = page.locator("figure.chart[data-figure=requests] .u-legend").inner_text()
        for model in (VLLM_MODEL, SPANS_MODEL, METRICS_MODEL, SDK_MODEL):
            assert model in legend
        assert page.locator("figure.chart.failed").count() == 0
        assert "failed" not in (page.locator("figure.chart").first.get_attribute("class") or "")
        assert "No data" not in page.locator("figure.chart[data-chart=llm_kv_cache]").inner_text()
        hosts = page.locator("#model-hosts tbody tr")
        assert hosts.count() == 1
        assert hosts.first.locator("td").all_inner_texts() == [VLLM_MODEL, HOST, "1", "63.0%"]
        page.screenshot(path=str(ui_output / "models.png"), full_page=True)
        _check_table(page, ui_stack, models_data["token"], by_organization=False)
        page.check("#by-organization")
        page.wait_for_function(
            "() => document.getElementById('models').dataset.source.includes('by=organization')"
        )
        page.wait_for_function("() => !document.querySelector('.org-col').hidden")
        _check_table(page, ui_stack, models_data["token"], by_organization=True)
        # The charts follow the toggle: a line per model and organisation.
        page.wait_for_function(
            "() => document.querySelector('figure.chart[data-figure=requests] .u-legend')"
            f".textContent.includes('{SPANS_MODEL} {SPANS_ORG}')"
        )
    finally:
        context.close()


def _table(page) -> dict[tuple[str, str], dict[str, str]]:
    rows = {}
    for row in page.locator("#models tbody tr").all():
        cells = {
            cell.get_attribute("data-field"): cell.get_attribute("data-value")
            for cell in row.locator("td[data-field]").all()
        }
        rows[(row.get_attribute("data-model"), row.get_attribute("data-organization"))] = cells
    return rows


def _check_table(page, stack: Stack, token: str, by_organization: bool) -> None:
    """The page's cells equal the API's answer to the same request, and the known inputs."""
    source = page.locator("#models").get_attribute("data-source")
    api = _get(stack, token, source)["models"]
    shown = _table(page)
    assert len(shown) == len(api) == 4
    for row in api:
        cells = shown[(row["model"], row.get("organization", "") if by_organization else "")]
        expected = {
            "requests": row["requests"],
            "errors": row["errors"],
            "input_tokens_per_second": row["input_tokens_per_second"],
            "output_tokens_per_second": row["output_tokens_per_second"],
            "latency_p50": row["latency_seconds"]["p50"],
            "latency_p95": row["latency_seconds"]["p95"],
            "ttft_p50": row["time_to_first_token_seconds"]["p50"],
            "ttft_p95": row["time_to_first_token_seconds"]["p95"],
            "cost_usd": row["cost_usd"],
        }
        assert {k: (float(v) if v != "" else None) for k, v in cells.items()} == {
            k: (float(v) if v is not None else None) for k, v in expected.items()
        }, row["model"]
    by_model = {row["model"]: row for row in api}
    vllm_total = STEPS * (OK_PER_STEP + ABORTED_PER_STEP)
    known = {
        VLLM_MODEL: (vllm_total, STEPS * ABORTED_PER_STEP),
        SPANS_MODEL: (len(SPANS), sum(1 for s in SPANS if s[3])),
        METRICS_MODEL: (len(METRIC_CALLS), 0),
        SDK_MODEL: (len(SDK_CALLS), sum(1 for c in SDK_CALLS if c[4] == "error")),
    }
    assert {m: (r["requests"], r["errors"]) for m, r in by_model.items()} == known
    # Costs: the price table's arithmetic for the priced model, the reported ones for the SDK's.
    spans_cost = sum(s[1] for s in SPANS) / 1000 * PRICE_IN + sum(s[2] for s in SPANS) / 1000 * PRICE_OUT
    assert by_model[SPANS_MODEL]["cost_usd"] == pytest.approx(spans_cost)
    assert by_model[SDK_MODEL]["cost_usd"] == pytest.approx(sum(c[3] or 0 for c in SDK_CALLS))
    seconds = _get(stack, token, source)["seconds"]
    assert by_model[SDK_MODEL]["input_tokens_per_second"] == pytest.approx(
        sum(c[1] for c in SDK_CALLS) / seconds, rel=1e-4
    )
    if by_organization:
        assert {(r["model"], r.get("organization", "")) for r in api} == {
            (VLLM_MODEL, ""),
            (SPANS_MODEL, SPANS_ORG),
            (METRICS_MODEL, METRICS_ORG),
            (SDK_MODEL, SDK_ORG),
        }


def test_the_models_page_fits_a_phone_in_the_dark_theme(browser, ui_stack, models_data, ui_output):
    context, page = _open(browser, ui_stack, "/models/", viewport={"width": 375, "height": 812})
    try:
        page.click("#theme-toggle")
        assert page.evaluate("document.documentElement.dataset.theme") in ("dark", "light")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        widths = page.evaluate("[...document.querySelectorAll('figure.chart')].map((f) => f.clientWidth)")
        assert widths and all(0 < w <= 375 for w in widths)
        page.select_option("#range", "6h")
        page.wait_for_function("() => location.search.includes('range=6h')")
        page.screenshot(path=str(ui_output / "models-375-dark.png"), full_page=True)
    finally:
        context.close()


def test_the_known_inputs_reach_the_contract_series(ui_stack, models_data):
    token = models_data["token"]
    total = models_data["vllm_total"]
    assert (
        _query(ui_stack, token, f'sum(llm_input_tokens_total{{model="{VLLM_MODEL}"}})')
        == total * PROMPT_PER_REQUEST
    )
    assert (
        _query(ui_stack, token, f'sum(llm_output_tokens_total{{model="{VLLM_MODEL}"}})')
        == total * GENERATED_PER_REQUEST
    )
    assert _query(ui_stack, token, f'sum(llm_requests_total{{model="{VLLM_MODEL}",status="error"}})') == (
        STEPS * ABORTED_PER_STEP
    )
    assert _query(ui_stack, token, f'sum(llm_input_tokens_total{{model="{SPANS_MODEL}"}})') == sum(
        s[1] for s in SPANS
    )
    assert _query(ui_stack, token, f'sum(llm_output_tokens_total{{organization="{METRICS_ORG}"}})') == sum(
        c[2] for c in METRIC_CALLS
    )
