"""The agent's own config loader accepts what compose and the chart hand it."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from agent.config import load_config

from .conftest import Render
from .manifests import container, env_map, find, pod_spec, volume_mount

STATE_DIR = "/var/lib/fleetwatch-agent"
HOST_DIRS = {"FLEETWATCH_AGENT_PROCFS": "/host/proc", "FLEETWATCH_AGENT_HOSTFS": "/host/root"}


def with_stand_ins(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """Replace the container's state dir and host mounts (absent here) by existing stand-ins."""
    assert {name: env.get(name) for name in HOST_DIRS} == HOST_DIRS
    stand_ins = {name: str(tmp_path / name.lower()) for name in HOST_DIRS}
    for path in stand_ins.values():
        Path(path).mkdir()
    return {**env, **stand_ins, "FLEETWATCH_AGENT_STATE_DIR": str(tmp_path)}


def test_compose_agent_settings_load_and_report_the_box(compose: dict[str, Any], tmp_path: Path) -> None:
    agent = compose["services"]["agent"]
    env = {name: str(value) for name, value in agent["environment"].items()}
    assert env["FLEETWATCH_AGENT_STATE_DIR"] == STATE_DIR
    assert ("agent-state", STATE_DIR, False) in map(volume_mount, agent["volumes"])
    # The real state dir is the volume; here a writable stand-in.
    config = load_config(env=with_stand_ins(env, tmp_path))
    assert config.redis_url == env["FLEETWATCH_AGENT_REDIS_URL"]
    assert config.host  # empty FLEETWATCH_AGENT_HOST falls back to the host name
    assert config.stream_prefix == "fleetwatch"


def resolve_pod_env(ctr: dict[str, Any], secret: dict[str, Any], node: str) -> dict[str, str]:
    """Resolve env the way the kubelet would: fieldRef spec.nodeName and secretKeyRef."""
    values: dict[str, str] = {}
    for name, entry in env_map(ctr).items():
        source = entry.get("valueFrom", {})
        if "fieldRef" in source:
            assert source["fieldRef"]["fieldPath"] == "spec.nodeName"
            values[name] = node
        elif "secretKeyRef" in source:
            assert source["secretKeyRef"]["name"] == secret["metadata"]["name"]
            if source["secretKeyRef"].get("optional") and source["secretKeyRef"]["key"] not in secret["data"]:
                continue
            values[name] = base64.b64decode(secret["data"][source["secretKeyRef"]["key"]]).decode()
        else:
            values[name] = entry["value"]
    return values


def test_chart_agent_settings_load_and_report_the_node(render: Render, tmp_path: Path) -> None:
    values = {
        "agentSecrets": {"redisUrl": "redis://fleetwatch-agent:pw@redis.data:6379/2"},
        "config": {"streamPrefix": "fw-prod"},
    }
    docs = render(values)
    agent = find(docs, "DaemonSet", "-agent")
    secret = find(docs, "Secret", "fw-fleetwatch-agent")  # the only Secret the agents read
    env = resolve_pod_env(container(agent), secret, node="node-7.cluster.local")
    mounts = {m["mountPath"]: m["name"] for m in container(agent)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(agent)["volumes"]}
    # The state dir is a directory on the node, so a replaced pod keeps the agent id and the spool.
    assert volumes[mounts[env["FLEETWATCH_AGENT_STATE_DIR"]]]["hostPath"] == {
        "path": STATE_DIR,
        "type": "DirectoryOrCreate",
    }
    config = load_config(env=with_stand_ins(env, tmp_path))
    assert config.host == "node-7.cluster.local"
    assert config.redis_url == "redis://fleetwatch-agent:pw@redis.data:6379/2"
    assert config.stream_prefix == "fw-prod"
