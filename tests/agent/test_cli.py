"""The real console script: --once --print, and the agent never importing Django."""

from __future__ import annotations

import json
import subprocess
import sys

from shared.wire import METRIC_NAME_RE, decode_batch
from shared.wire_v2 import series_maps
from tests.agent.conftest import AGENT_SCRIPT, REPO, agent_env


def run_agent(
    env: dict[str, str], *args: str, python_args: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    command = (
        [sys.executable, *python_args, "-m", "agent", *args] if python_args else [str(AGENT_SCRIPT), *args]
    )
    return subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=60)


def test_once_print_outputs_one_metrics_batch_as_json(state_dir):
    env = agent_env(state_dir, FLEETWATCH_AGENT_HOST="web-1", FLEETWATCH_AGENT_LABELS="rack=r1")
    result = run_agent(env, "--once", "--print")
    assert result.returncode == 0, result.stderr
    batch = json.loads(result.stdout)
    assert batch["v"] == 2 and batch["kind"] == "metrics"
    batch["series"] = series_maps(batch)
    assert batch["agent"]["host"] == "web-1"
    assert batch["agent"]["id"] == (state_dir / "agent_id").read_text().strip()
    assert isinstance(batch["epoch"], int) and batch["seq"] == 0
    names = {s["name"] for s in batch["series"]}
    assert {
        "system_cpu_usage_percent",
        "system_memory_total_bytes",
        "agent_spool_bytes",
        "agent_batches_sent_total",
        "agent_collection_seconds",
    } <= names
    assert all(METRIC_NAME_RE.match(name) for name in names)
    assert batch["agent"]["labels"] == {"rack": "r1"}
    assert not [s for s in batch["series"] if "rack" in s["labels"]], (
        "host labels travel once, in agent.labels"
    )
    for item in batch["series"]:
        assert len(item["points"]) == 1 and len(item["points"][0]) == 2


def test_once_print_neither_sends_nor_advances_the_sequence(state_dir):
    env = agent_env(state_dir)
    first = json.loads(run_agent(env, "--once", "--print").stdout)
    second = json.loads(run_agent(env, "--once", "--print").stdout)
    assert first["seq"] == second["seq"] == 0
    assert not (state_dir / "sequence-metrics.json").exists()


def test_print_without_once_is_a_usage_error(state_dir):
    result = run_agent(agent_env(state_dir), "--print")
    assert result.returncode == 2
    assert "--print needs --once" in result.stderr


def test_collectors_setting_limits_the_batch_to_those_groups(state_dir):
    env = agent_env(state_dir, FLEETWATCH_AGENT_COLLECTORS="memory,load")
    batch = json.loads(run_agent(env, "--once", "--print").stdout)
    system = {s["name"] for s in series_maps(batch) if s["name"].startswith("system_")}
    assert system == {
        "system_memory_usage_percent",
        "system_memory_used_bytes",
        "system_memory_available_bytes",
        "system_memory_total_bytes",
        "system_load1",
        "system_load5",
        "system_load15",
    }


def test_running_the_agent_never_imports_django(state_dir):
    result = run_agent(agent_env(state_dir), "--once", "--print", python_args=("-X", "importtime"))
    assert result.returncode == 0, result.stderr
    imported = [
        line.rsplit("|", 1)[-1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    ]
    assert "agent.cli" in imported and "psutil" in imported, "importtime output not as expected"
    assert not [
        name
        for name in imported
        if name.split(".")[0]
        in {"django", "rest_framework", "collector_server", "alerting_worker", "rq", "psycopg"}
    ]


def test_once_without_print_sends_one_batch_to_the_stream(state_dir, private_redis):
    env = agent_env(state_dir, private_redis.url, FLEETWATCH_STREAM_PREFIX="onetest")
    result = run_agent(env, "--once")
    assert result.returncode == 0, result.stderr
    entries = private_redis.client().xrange("onetest:stream:metrics")
    assert len(entries) == 1
    batch = decode_batch(entries[0][1][b"b"])
    assert batch.seq == 0 and batch.sample_count() > 10
