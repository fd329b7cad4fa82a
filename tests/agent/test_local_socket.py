"""The local app socket is on by default, and the log shipper's counters ride in the agent's batch."""

from __future__ import annotations

import logging
import re
import socket
from pathlib import Path

import pytest

from agent.collectors import CollectorSet
from agent.components import LogShipping, attach_health, build_components, log_ship_config
from agent.config import load_config
from agent.logs.endpoint import LocalEndpoint
from agent.logs.socket_path import usable_socket_path
from agent.runner import MetricsAgent
from agent.sdk.client import AgentClient
from shared.config import ConfigError
from shared.wire import decode_batch
from shared.wire_v2 import readable, series_maps
from tests.agent.conftest import agent_env, short_socket_path, wait_until

PREFIX = "sock"
LOGS_STREAM = f"{PREFIX}:stream:logs"
METRICS_STREAM = f"{PREFIX}:stream:metrics"
CONTRACT = (Path(__file__).resolve().parents[2] / "docs" / "contracts.md").read_text()


def record(message: str) -> dict:
    return {"ts": 1_700_000_000.0, "level": "ERROR", "message": message, "service": "shop"}


def shipped_messages(server) -> list[str]:
    entries = server.client().xrange(LOGS_STREAM)
    return [r["message"] for _, fields in entries for r in decode_batch(fields[b"b"]).logs]


def socket_records_in_batches(server) -> list[float]:
    """Values of agent_logs_records_total{source=socket} in the metrics stream, oldest first."""
    out = []
    for _, fields in server.client().xrange(METRICS_STREAM):
        for series in decode_batch(fields[b"b"]).all_series():
            if series.name == "agent_logs_records_total" and series.labels.get("source") == "socket":
                out.append(series.points[0][1])
    return out


@pytest.mark.slow
def test_plain_agent_start_opens_the_socket_and_forwards_an_sdk_record_to_the_logs_stream(
    state_dir, private_redis, start_agent
):
    env = agent_env(
        state_dir,
        private_redis.url,
        FLEETWATCH_STREAM_PREFIX=PREFIX,
        FLEETWATCH_AGENT_INTERVAL="0.2",
        FLEETWATCH_AGENT_COLLECTORS="load",
    )
    path = env["FLEETWATCH_AGENT_SOCKET"]
    agent = start_agent(env)  # no config file, so no [logs] table
    wait_until(lambda: Path(path).is_socket(), timeout=20)
    client = AgentClient(socket_path=path)
    try:
        assert client.send_log(record("payment failed"))
    finally:
        client.close()
    assert wait_until(lambda: shipped_messages(private_redis), timeout=20) == ["payment failed"]
    # The shipper's counters are in the agent's own metrics batches.
    assert wait_until(lambda: 1.0 in socket_records_in_batches(private_redis), timeout=20)
    code, stderr = agent.stop()
    assert code == 0, stderr
    assert not Path(path).exists(), "the socket is removed on a clean stop"


@pytest.fixture
def shipping_agent(tmp_path, private_redis):
    """A MetricsAgent with the default components started, as ``fleetwatch-agent`` runs them."""
    env = {
        "FLEETWATCH_AGENT_STATE_DIR": str(tmp_path / "state"),
        "FLEETWATCH_AGENT_REDIS_URL": private_redis.url,
        "FLEETWATCH_STREAM_PREFIX": PREFIX,
    }
    path = tmp_path / "agent.toml"
    path.write_text(f'[logs]\nsocket_path = "{short_socket_path(tmp_path)}"\nflush_interval = 0.1\n')
    config = load_config(path, env=env, available_collectors=[])
    agent = MetricsAgent(config, collectors=CollectorSet([]))
    components = build_components(config, agent.transport)
    attach_health(agent, components)
    for component in components:
        component.start()
    yield agent, components
    for component in reversed(components):
        component.stop()
    agent.close()


def test_log_shipping_counters_are_added_to_every_metrics_batch(shipping_agent, private_redis):
    agent, components = shipping_agent
    [shipping] = components
    assert isinstance(shipping, LogShipping)
    path = shipping.shipper.config.socket_path
    client = AgentClient(socket_path=path)
    try:
        assert client.send_log(record("one")) and client.send_log(record("two"))
    finally:
        client.close()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as raw:
        raw.sendto(b"\xc1 not msgpack", path)
    wait_until(lambda: len(shipped_messages(private_redis)) == 2)
    series = series_maps(readable(agent.build_batch()))

    def value(name: str, **labels: str) -> list[float]:
        return [s["points"][0][1] for s in series if s["name"] == name and s["labels"] == labels]

    assert value("agent_logs_records_total", source="socket") == [2.0]
    assert value("agent_logs_rejected_total", source="socket") == [1.0]
    assert value("agent_logs_dropped_total", source="socket") == [0.0]
    assert value("agent_logs_files_tracked") == [0.0]
    assert value("agent_spool_batches") == [0.0], "the agent's own health series are still there"


def test_every_log_shipping_health_series_is_named_in_the_contract(shipping_agent):
    agent, _ = shipping_agent
    names = {series["name"] for source in agent.health_sources for series in source(0.0)}
    assert names and all(name.startswith("agent_logs_") for name in names)
    contract_names = set(re.findall(r"`(agent_[a-z0-9_]+)", CONTRACT))
    assert names <= contract_names, names - contract_names
    assert "agent_collector_errors_total" in contract_names


def test_failing_health_source_is_left_out_and_the_batch_still_goes(tmp_path, caplog):
    config = load_config(env={"FLEETWATCH_AGENT_STATE_DIR": str(tmp_path)}, available_collectors=[])
    agent = MetricsAgent(config, collectors=CollectorSet([]), dry_run=True)

    def broken(_ts: float) -> list[dict]:
        raise RuntimeError("shipper gone")

    agent.health_sources.append(broken)
    try:
        with caplog.at_level(logging.ERROR, logger="agent"):
            first = series_maps(readable(agent.build_batch()))
            agent.build_batch()
    finally:
        agent.close()
    assert any(s["name"] == "agent_spool_bytes" for s in first)
    assert sum("health series of" in r.getMessage() for r in caplog.records) == 1, "logged once"


def test_default_socket_falls_back_to_the_state_dir_when_its_directory_cannot_be_made(tmp_path, caplog):
    blocker = tmp_path / "run"
    blocker.write_text("a file where the directory should be")
    default = str(blocker / "fleetwatch" / "agent.sock")
    with caplog.at_level(logging.WARNING):
        chosen = usable_socket_path(default, explicit=False, state_dir=tmp_path / "state", default=default)
    assert chosen == str(tmp_path / "state" / "agent.sock")
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"FLEETWATCH_AGENT_SOCKET={chosen}" in warning


def test_an_explicit_socket_path_is_kept_even_when_unusable(tmp_path):
    blocker = tmp_path / "run"
    blocker.write_text("")
    wanted = str(blocker / "agent.sock")
    assert usable_socket_path(wanted, explicit=True, state_dir=tmp_path, default=wanted) == wanted


def test_socket_path_from_the_variable_counts_as_explicit(tmp_path):
    config = load_config(env={"FLEETWATCH_AGENT_STATE_DIR": str(tmp_path)}, available_collectors=[])
    ship = log_ship_config(config, env={"FLEETWATCH_AGENT_SOCKET": "/tmp/fw-explicit.sock"})
    assert ship.socket_enabled and ship.files == []


def test_socket_enabled_false_without_files_starts_no_log_shipper(tmp_path):
    path = tmp_path / "agent.toml"
    path.write_text("[logs]\nsocket_enabled = false\n")
    config = load_config(path, env={"FLEETWATCH_AGENT_STATE_DIR": str(tmp_path)}, available_collectors=[])
    agent = MetricsAgent(config, collectors=CollectorSet([]), dry_run=True)
    try:
        assert build_components(config, agent.transport) == []
    finally:
        agent.close()


def test_second_endpoint_on_a_live_socket_is_refused_but_a_stale_one_is_replaced(tmp_path):
    path = short_socket_path(tmp_path)
    first = LocalEndpoint(path, lambda _r: None, lambda _s: None)
    first.start()
    try:
        with pytest.raises(ConfigError, match=r"logs\.socket_path=.*another process"):
            LocalEndpoint(path, lambda _r: None, lambda _s: None).start()
    finally:
        first.stop()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(path)
    stale.close()  # the file stays, nobody receives: what a killed agent leaves behind
    second = LocalEndpoint(path, lambda _r: None, lambda _s: None)
    second.start()
    second.stop()
