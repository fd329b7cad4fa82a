"""The agent sends metrics in wire format version 2 unless its wire_version setting says 1."""

from __future__ import annotations

import pytest

from agent.collectors import CollectorSet
from agent.config import ConfigError, load_config
from agent.runner import MetricsAgent
from shared.wire import decode_batch


def build(tmp_path, **env: str):
    config = load_config(env={"FLEETWATCH_AGENT_STATE_DIR": str(tmp_path), **env}, available_collectors=[])
    agent = MetricsAgent(config, collectors=CollectorSet([]), dry_run=True)
    try:
        return config, [decode_batch(agent.build_batch(now=1_700_000_000.0)) for _ in range(2)]
    finally:
        agent.close()


def test_version_2_by_default_with_one_catalog_for_unchanged_series(tmp_path):
    config, batches = build(tmp_path)
    assert config.wire_version == 2
    assert [batch.version for batch in batches] == [2, 2]
    assert batches[0].catalog is batches[1].catalog, "the same catalog bytes every cycle"
    series = {s.name: s for s in batches[0].all_series()}
    assert series["agent_spool_bytes"].points == [[1_700_000_000.0, 0.0]]
    assert series["agent_batches_sent_total"].type == "counter"


def test_wire_version_1_sends_version_1_with_the_same_series(tmp_path):
    config, batches = build(tmp_path / "v1", FLEETWATCH_AGENT_WIRE_VERSION="1")
    _, v2 = build(tmp_path / "v2")
    assert config.wire_version == 1 and batches[0].version == 1 and batches[0].catalog is None
    as_tuples = [  # the collection time differs from one agent to the other; the rest does not
        [(s.name, s.type, s.labels, len(s.points)) for s in batch.all_series()]
        for batch in (batches[0], v2[0])
    ]
    assert as_tuples[0] == as_tuples[1] and len(as_tuples[0]) > 5


@pytest.mark.parametrize("value", ["3", "0", "two", "1.5"])
def test_a_bad_wire_version_stops_start_up_naming_the_setting(tmp_path, value):
    with pytest.raises(ConfigError, match="FLEETWATCH_AGENT_WIRE_VERSION"):
        load_config(
            env={"FLEETWATCH_AGENT_STATE_DIR": str(tmp_path), "FLEETWATCH_AGENT_WIRE_VERSION": value},
            available_collectors=[],
        )
