"""Agent settings: defaults, file and environment layering, and errors that name the setting."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agent.collectors import REGISTRY
from agent.config import DEFAULT_SPOOL_CAP, ConfigError, load_config
from tests.agent.conftest import AGENT_SCRIPT, REPO, agent_env

ALL = list(REGISTRY)


def load(env: dict[str, str], path: Path | None = None, **overrides):
    return load_config(path, env=env, overrides=overrides, available_collectors=ALL)


def test_defaults_work_on_a_laptop(state_dir):
    config = load({"FLEETWATCH_AGENT_STATE_DIR": str(state_dir)})
    assert config.redis_url == "redis://127.0.0.1:6379/0"
    assert config.interval == 10.0
    assert config.spool_cap_bytes == DEFAULT_SPOOL_CAP
    assert config.stream_prefix == "fleetwatch"
    assert config.collectors == ALL
    assert config.host
    assert config.labels == {}


def test_agent_id_is_created_once_and_kept_in_the_state_dir(state_dir):
    first = load({"FLEETWATCH_AGENT_STATE_DIR": str(state_dir)}).agent_id
    second = load({"FLEETWATCH_AGENT_STATE_DIR": str(state_dir)}).agent_id
    assert first == second
    assert (state_dir / "agent_id").read_text().strip() == first


def test_file_overrides_generic_env_and_agent_env_overrides_file(tmp_path, state_dir):
    path = tmp_path / "agent.toml"
    path.write_text(
        f"""
[agent]
redis_url = "redis://file:6379/2"
interval = 15
state_dir = "{state_dir}"
collectors = ["cpu", "memory"]
labels = {{ rack = "r1", env = "prod" }}

[logs]
paths = ["/var/log/app.log"]
"""
    )
    env = {
        "REDIS_URL": "redis://generic:6379/0",
        "METRICS_COLLECTION_INTERVAL": "30",
        "FLEETWATCH_AGENT_INTERVAL": "5",
    }
    config = load(env, path)
    assert config.redis_url == "redis://file:6379/2"
    assert config.interval == 5.0
    assert config.collectors == ["cpu", "memory"]
    assert config.labels == {"rack": "r1", "env": "prod"}
    assert config.document["logs"] == {"paths": ["/var/log/app.log"]}


def test_seed_collection_interval_and_generic_redis_url_are_honoured(state_dir):
    env = {
        "FLEETWATCH_AGENT_STATE_DIR": str(state_dir),
        "METRICS_COLLECTION_INTERVAL": "30",
        "REDIS_URL": "redis://cache:6379/3",
        "FLEETWATCH_STREAM_PREFIX": "staging",
    }
    config = load(env)
    assert (config.interval, config.redis_url, config.stream_prefix) == (
        30.0,
        "redis://cache:6379/3",
        "staging",
    )


def test_cli_interval_flag_beats_everything(state_dir):
    config = load(
        {"FLEETWATCH_AGENT_STATE_DIR": str(state_dir), "FLEETWATCH_AGENT_INTERVAL": "5"}, interval="0.2"
    )
    assert config.interval == 0.2


def test_labels_from_env_are_parsed_as_name_value_pairs(state_dir):
    config = load(
        {"FLEETWATCH_AGENT_STATE_DIR": str(state_dir), "FLEETWATCH_AGENT_LABELS": "rack=r7, env=dev"}
    )
    assert config.labels == {"rack": "r7", "env": "dev"}


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"FLEETWATCH_AGENT_INTERVAL": "ten"}, "FLEETWATCH_AGENT_INTERVAL='ten' is not a number"),
        ({"METRICS_COLLECTION_INTERVAL": "-1"}, "METRICS_COLLECTION_INTERVAL"),
        (
            {"FLEETWATCH_AGENT_SPOOL_CAP_BYTES": "-5"},
            "FLEETWATCH_AGENT_SPOOL_CAP_BYTES='-5' must be at least 1",
        ),
        (
            {"FLEETWATCH_AGENT_SPOOL_CAP_BYTES": "lots"},
            "FLEETWATCH_AGENT_SPOOL_CAP_BYTES='lots' is not an integer",
        ),
        (
            {"FLEETWATCH_AGENT_COLLECTORS": "cpu,fans"},
            "FLEETWATCH_AGENT_COLLECTORS: unknown collector 'fans'",
        ),
        ({"REDIS_URL": "http://x"}, "REDIS_URL='http://x'"),
        ({"FLEETWATCH_AGENT_REDIS_URL": "mysql://x"}, "FLEETWATCH_AGENT_REDIS_URL='mysql://x'"),
        ({"FLEETWATCH_AGENT_LABELS": "host=x"}, "FLEETWATCH_AGENT_LABELS: 'host' is not a usable label name"),
        ({"FLEETWATCH_AGENT_LABELS": "rack"}, "FLEETWATCH_AGENT_LABELS: 'rack' is not name=value"),
        ({"FLEETWATCH_AGENT_AGENT_ID": "has space"}, "FLEETWATCH_AGENT_AGENT_ID='has space'"),
        ({"FLEETWATCH_AGENT_LOG_LEVEL": "LOUD"}, "FLEETWATCH_AGENT_LOG_LEVEL='LOUD'"),
        ({"FLEETWATCH_AGENT_STATE_DIR": "/proc/nope"}, "FLEETWATCH_AGENT_STATE_DIR='/proc/nope'"),
    ],
)
def test_bad_value_is_rejected_naming_the_setting(state_dir, env, named):
    env = {"FLEETWATCH_AGENT_STATE_DIR": str(state_dir), **env}
    with pytest.raises(ConfigError) as error:
        load(env)
    assert named in str(error.value)


def test_unknown_key_in_the_file_is_rejected_by_name(tmp_path, state_dir):
    path = tmp_path / "agent.toml"
    path.write_text(f'[agent]\nstate_dir = "{state_dir}"\nintervall = 5\n')
    with pytest.raises(ConfigError, match=r"unknown setting agent.intervall"):
        load({}, path)


def test_broken_toml_and_missing_file_name_the_file(tmp_path):
    path = tmp_path / "agent.toml"
    path.write_text("[agent\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load({}, path)
    with pytest.raises(ConfigError, match="FLEETWATCH_AGENT_CONFIG"):
        load({}, tmp_path / "missing.toml")


def test_bad_setting_stops_the_agent_with_exit_code_2_and_the_name(state_dir):
    env = agent_env(state_dir, FLEETWATCH_AGENT_INTERVAL="ten")
    result = subprocess.run(
        [str(AGENT_SCRIPT)], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "FLEETWATCH_AGENT_INTERVAL='ten' is not a number" in result.stderr


def test_top_processes_and_walk_intervals_come_from_file_and_env_and_reach_the_collectors(
    tmp_path, state_dir
):
    from agent.collectors.options import DEFAULT_OPTIONS
    from agent.runner import MetricsAgent

    env = {"FLEETWATCH_AGENT_STATE_DIR": str(state_dir)}
    assert load(env).collector_options == DEFAULT_OPTIONS
    path = tmp_path / "agent.toml"
    path.write_text("[agent]\ntop_processes = 3\ntop_processes_interval = 30\nsystemd_interval = 120.5\n")
    options = load(env, path).collector_options
    assert (options.top_processes, options.top_processes_interval, options.systemd_interval) == (
        3,
        30.0,
        120.5,
    )
    config = load(
        {**env, "FLEETWATCH_AGENT_TOP_PROCESSES": "7", "FLEETWATCH_AGENT_COLLECTORS": "top_processes"}, path
    )
    assert config.collector_options.top_processes == 7
    agent = MetricsAgent(config, dry_run=True)
    try:
        (collector,) = agent.collectors.collectors
        assert collector.options.top_processes == 7 and collector.options.top_processes_interval == 30.0
    finally:
        agent.close()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("top_processes", "0", "must be at least 1"),
        ("top_processes", "101", "must be at most 100"),
        ("top_processes", "2.5", "is not an integer"),
        ("top_processes", "many", "is not an integer"),
        ("top_processes_interval", "-1", "must be at least"),
        ("systemd_interval", "soon", "is not a number"),
    ],
)
def test_bad_collector_options_are_refused_naming_the_setting(state_dir, key, value, message):
    name = f"FLEETWATCH_AGENT_{key.upper()}"
    with pytest.raises(ConfigError, match=rf"{name}='{value}' {message}"):
        load({"FLEETWATCH_AGENT_STATE_DIR": str(state_dir), name: value})


def test_stream_shards_and_cluster_settings(state_dir, tmp_path):
    config = load({"FLEETWATCH_AGENT_STATE_DIR": str(state_dir)})
    assert (config.stream_shards, config.redis_cluster) == (1, False)
    config = load({"FLEETWATCH_AGENT_STATE_DIR": str(state_dir), "STREAM_SHARDS": "8"})
    assert config.stream_shards == 8
    toml = tmp_path / "agent.toml"
    toml.write_text("[agent]\nstream_shards = 12\nredis_cluster = true\n")
    config = load({"FLEETWATCH_AGENT_STATE_DIR": str(state_dir)}, toml)
    assert (config.stream_shards, config.redis_cluster) == (12, True)
    for env, named in (
        ({"STREAM_SHARDS": "0"}, "STREAM_SHARDS"),
        ({"FLEETWATCH_AGENT_STREAM_SHARDS": "many"}, "FLEETWATCH_AGENT_STREAM_SHARDS"),
        ({"FLEETWATCH_AGENT_REDIS_CLUSTER": "maybe"}, "FLEETWATCH_AGENT_REDIS_CLUSTER"),
    ):
        with pytest.raises(ConfigError, match=named):
            load({"FLEETWATCH_AGENT_STATE_DIR": str(state_dir), **env})
