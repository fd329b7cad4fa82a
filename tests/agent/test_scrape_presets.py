"""Scrape presets: vLLM-, TGI- and Ollama-exporter-shaped test exporters mapped onto the LLM contract."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agent.scrape.config import scrape_targets
from agent.scrape.scraper import Scraper
from shared.config import ConfigError
from shared.wire import decode_batch
from tests.agent.conftest import agent_env, wait_until
from tests.model_servers import (
    ABORTED_PER_STEP,
    GENERATED_PER_REQUEST,
    KV_CACHE,
    OK_PER_STEP,
    PROMPT_PER_REQUEST,
    VLLM_MODEL,
    ModelServer,
)

PER_STEP = OK_PER_STEP + ABORTED_PER_STEP


@pytest.fixture
def server(request) -> Iterator[ModelServer]:
    served = ModelServer(request.param)
    yield served
    served.close()


def _scrape_twice(server: ModelServer, **extra) -> dict[tuple[str, tuple], float]:
    """Scrape twice (zeros, then one step) and return the second scrape's series by name and labels."""
    table = {"url": server.url, "name": f"{server.kind}-1", "preset": server.kind, **extra}
    sent: list[bytes] = []
    scraper = Scraper(
        scrape_targets({"scrape": [table]}), "agent-1", "gpu-1", lambda b: sent.append(b) or True
    )
    assert scraper.scrape(scraper.targets[0]) and scraper.scrape(scraper.targets[0])
    batch = decode_batch(sent[1])
    instance = server.url.split("/")[2]
    out = {}
    for s in batch.series:
        labels = dict(s.labels)
        assert (labels.pop("job"), labels.pop("instance")) == (f"{server.kind}-1", instance)
        out[(s.name, tuple(sorted(labels.items())))] = s.points[0][1]
    return out


def _model(figures, name: str, model: str, **labels: str) -> float:
    return figures[(name, tuple(sorted({"model": model, **labels}.items())))]


@pytest.mark.parametrize("server", ["vllm"], indirect=True)
def test_the_vllm_preset_maps_every_figure_and_keeps_the_originals(server):
    figures = _scrape_twice(server)
    m = VLLM_MODEL
    assert _model(figures, "llm_requests_running", m) == 3.0
    assert _model(figures, "llm_requests_waiting", m) == 1.0
    assert _model(figures, "llm_kv_cache_usage_ratio", m) == KV_CACHE
    assert _model(figures, "llm_requests_total", m, status="ok") == OK_PER_STEP
    assert (
        _model(figures, "llm_requests_total", m, status="error") == ABORTED_PER_STEP
    )  # finished_reason abort
    assert _model(figures, "llm_input_tokens_total", m) == PER_STEP * PROMPT_PER_REQUEST
    assert _model(figures, "llm_output_tokens_total", m) == PER_STEP * GENERATED_PER_REQUEST
    assert _model(figures, "llm_unpriced_input_tokens_total", m) == PER_STEP * PROMPT_PER_REQUEST
    # Re-bucketed onto the contract's bounds: 0.1 s and 1 s are vLLM bounds too (exact).
    assert _model(figures, "llm_time_to_first_token_seconds_bucket", m, le="0.1") == OK_PER_STEP
    assert _model(figures, "llm_time_to_first_token_seconds_bucket", m, le="1.0") == PER_STEP
    assert _model(figures, "llm_time_to_first_token_seconds_count", m) == PER_STEP
    assert _model(figures, "llm_request_duration_seconds_bucket", m, le="1.0") == OK_PER_STEP
    assert _model(figures, "llm_request_duration_seconds_bucket", m, le="+Inf") == PER_STEP
    assert _model(figures, "llm_request_duration_seconds_sum", m) == pytest.approx(OK_PER_STEP * 0.9 + 4.0)
    assert _model(figures, "llm_time_per_output_token_seconds_bucket", m, le="0.025") == PER_STEP
    # The server's own series stay.
    own = ("vllm:request_success_total", (("engine", "0"), ("finished_reason", "stop"), ("model_name", m)))
    assert figures[own] == OK_PER_STEP


@pytest.mark.parametrize("server", ["tgi"], indirect=True)
def test_the_tgi_preset_takes_the_model_from_the_table(server):
    figures = _scrape_twice(server, model="mistral-7b", keep_original=False)
    assert _model(figures, "llm_requests_total", "mistral-7b", status="ok") == OK_PER_STEP
    assert _model(figures, "llm_requests_total", "mistral-7b", status="error") == ABORTED_PER_STEP
    assert _model(figures, "llm_requests_running", "mistral-7b") == 4.0
    assert _model(figures, "llm_requests_waiting", "mistral-7b") == 2.0
    assert _model(figures, "llm_input_tokens_total", "mistral-7b") == PER_STEP * PROMPT_PER_REQUEST
    assert _model(figures, "llm_output_tokens_total", "mistral-7b") == PER_STEP * GENERATED_PER_REQUEST
    assert _model(figures, "llm_request_duration_seconds_bucket", "mistral-7b", le="1.0") == OK_PER_STEP
    assert not any(name.startswith("tgi_") for name, _ in figures)  # keep_original = false


@pytest.mark.parametrize("server", ["ollama"], indirect=True)
def test_the_ollama_preset_maps_the_ollama_exporter_names(server):
    figures = _scrape_twice(server)
    assert _model(figures, "llm_requests_total", "llama3.2:3b", status="ok") == PER_STEP
    assert _model(figures, "llm_input_tokens_total", "llama3.2:3b") == PER_STEP * PROMPT_PER_REQUEST
    assert _model(figures, "llm_request_duration_seconds_count", "llama3.2:3b") == PER_STEP


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ({"preset": "triton"}, "preset"),
        ({"preset": "vllm", "model": ""}, "model"),
        ({"preset": "vllm", "keep_original": "yes"}, "keep_original"),
        ({"model": "m"}, "preset"),
    ],
)
def test_bad_preset_settings_are_refused_naming_the_key(table, named):
    with pytest.raises(ConfigError, match=named):
        scrape_targets({"scrape": [{"url": "http://x/metrics", **table}]})


@pytest.mark.slow
@pytest.mark.parametrize("server", ["vllm"], indirect=True)
def test_the_agent_process_maps_a_vllm_exporter_with_counters_moving(
    tmp_path, state_dir, private_redis, start_agent, server
):
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[logs]\nsocket_enabled = false\n\n[[scrape]]\nurl = "{server.url}"\nname = "vllm"\n'
        'preset = "vllm"\ninterval = 0.2\n'
    )
    env = agent_env(
        state_dir,
        private_redis.url,
        FLEETWATCH_AGENT_CONFIG=str(config),
        FLEETWATCH_STREAM_PREFIX="presets",
        FLEETWATCH_AGENT_INTERVAL="0.2",
        FLEETWATCH_AGENT_COLLECTORS="load",
    )
    agent = start_agent(env)

    def requests_seen() -> list[float] | None:
        values = [
            s.points[0][1]
            for _, f in private_redis.client().xrange("presets:stream:metrics")
            for s in decode_batch(f[b"b"]).series
            if s.name == "llm_requests_total" and s.labels.get("status") == "ok"
        ]
        return values if len(values) >= 5 else None

    values = wait_until(requests_seen, timeout=20)
    # Zeros first, then a step per scrape until the exporter's three steps are done.
    assert values[:5] == [0.0, 10.0, 20.0, 30.0, 30.0]
    code, stderr = agent.stop()
    assert code == 0, stderr
