"""The chart's ServiceAccount per component and its NetworkPolicy set; check --deploy on the production example."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from typing import Any

import pytest

from .conftest import Render
from .manifests import ROOT, container, env_map, find, kinds, pod_spec, production_values

ROLE = "eks.amazonaws.com/role-arn"
WORKLOADS = {"server": "Deployment", "worker": "Deployment", "scheduler": "Deployment", "agent": "DaemonSet"}


def policies(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        d["metadata"]["name"].removeprefix("fw-fleetwatch-"): d for d in docs if d["kind"] == "NetworkPolicy"
    }


def peers_components(rule: dict[str, Any]) -> set[str]:
    (peer,) = [p for p in rule["from"] if "podSelector" in p]
    (components,) = [
        e["values"] for e in peer["podSelector"]["matchExpressions"] if e["key"].endswith("component")
    ]
    return set(components)


def test_every_component_runs_as_its_own_service_account(render: Render) -> None:
    docs = render()
    for component, kind in WORKLOADS.items():
        account = find(docs, "ServiceAccount", f"-{component}")
        assert (
            pod_spec(find(docs, kind, f"-{component}"))["serviceAccountName"] == account["metadata"]["name"]
        )
        assert account["automountServiceAccountToken"] is False


def test_the_agent_account_never_gets_the_cloud_role_of_the_production_example(render: Render) -> None:
    docs = render(production_values())
    for component in ("server", "worker", "scheduler", "migrations"):
        assert ROLE in find(docs, "ServiceAccount", f"-{component}")["metadata"]["annotations"]
    assert "annotations" not in find(docs, "ServiceAccount", "-agent")["metadata"]
    own = render({"agent": {"serviceAccountAnnotations": {"example.com/agent": "yes"}}})
    assert find(own, "ServiceAccount", "-agent")["metadata"]["annotations"] == {"example.com/agent": "yes"}


def test_without_created_accounts_every_pod_uses_the_named_one(render: Render) -> None:
    docs = render({"serviceAccount": {"create": False, "name": "platform"}})
    assert "ServiceAccount" not in kinds(docs)
    for component, kind in {**WORKLOADS, "migrations": "Job"}.items():
        assert pod_spec(find(docs, kind, f"-{component}"))["serviceAccountName"] == "platform"


def test_network_policies_limit_who_reaches_the_server_redis_and_postgres(render: Render) -> None:
    found = policies(render())
    assert set(found) == {"server", "no-ingress", "redis", "postgres"}
    server = found["server"]["spec"]
    assert server["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "server"
    assert server["ingress"][0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    ]
    assert server["ingress"][0]["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert peers_components(found["redis"]["spec"]["ingress"][0]) == {
        "server",
        "worker",
        "scheduler",
        "agent",
        "redis-acl",  # the hook Job that sets up the agents' Redis user
    }
    assert peers_components(found["postgres"]["spec"]["ingress"][0]) == {
        "server",
        "worker",
        "scheduler",
        "migrations",
    }
    assert found["postgres"]["spec"]["ingress"][0]["ports"] == [{"port": 5432, "protocol": "TCP"}]
    assert found["no-ingress"]["spec"]["ingress"] == []


def test_network_policies_can_be_switched_off_or_given_more_peers(render: Render) -> None:
    assert "NetworkPolicy" not in kinds(render({"networkPolicy": {"enabled": False}}))
    nodes = {"ipBlock": {"cidr": "10.0.0.0/16"}}
    found = policies(render({"networkPolicy": {"redis": {"extraFrom": [nodes]}}}))
    assert nodes in found["redis"]["spec"]["ingress"][0]["from"]


def production_env() -> dict[str, str]:
    """The settings the production example gives the server: its ConfigMap, extraEnv and secrets."""
    from helm_python import Chart

    from .manifests import CHART, NAMESPACE, RELEASE, split_manifests

    with Chart.load(CHART) as chart:
        docs = split_manifests(chart.render(production_values(), name=RELEASE, namespace=NAMESPACE))
    env = {k: str(v) for k, v in find(docs, "ConfigMap")["data"].items()}
    env.update(
        {
            k: v
            for k, v in env_map(container(find(docs, "Deployment", "-server"))).items()
            if isinstance(v, str)
        }
    )
    env["SECRET_KEY"] = secrets.token_urlsafe(50)  # from the release's Secret in a cluster
    env["DATABASE_URL"] = "postgres://fleetwatch:db-pass@pg.internal:5432/fleetwatch"
    env["REDIS_URL"] = "redis://redis.internal:6379/0"
    return env


@pytest.mark.parametrize("example", ["production", "none"])
def test_check_deploy_is_clean_with_the_production_example_only(example: str) -> None:
    env = (
        production_env()
        if example == "production"
        else {"SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "x"}
    )
    result = subprocess.run(
        [sys.executable, "-m", "django", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={
            "PATH": os.environ.get("PATH", ""),
            "DJANGO_SETTINGS_MODULE": "collector_server.settings",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    if example != "none":
        assert result.returncode == 0, result.stderr
        assert "System check identified no issues" in result.stdout
    else:  # the same check fails without the example's settings: it really looks at them
        for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
            assert warning in result.stderr
