"""The Helm chart, rendered by Helm's own engine and checked against the Kubernetes API schemas."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs, urlsplit

import helm_python
import kubernetes_validate
import pytest

from .conftest import Render
from .manifests import (
    CHART,
    NAMESPACE,
    RELEASE,
    SECRET_SETTINGS,
    console_scripts,
    container,
    env_map,
    find,
    kinds,
    pod_spec,
    production_values,
)

HEALTH_PATH = "/api/v1/monitoring/health?scope=server"
LIVENESS_PATH = "/api/v1/monitoring/health?scope=live"
AGENT_STATE_DIR = "/var/lib/fleetwatch-agent"
# The oldest Kubernetes the chart declares (Chart.yaml kubeVersion) and the newest schemas known.
KUBE_VERSIONS = ("1.25.0", kubernetes_validate.latest_version())
VALUE_SETS = {"default": None, "production": production_values()}
SECRETS = {
    "databaseUrl": "postgres://fw:db-pass-123@pg.internal:5432/fleetwatch",
    "redisUrl": "rediss://:redis-pass-456@redis.internal:6380/0",
    "secretKey": "django-secret-789",
    "smtpPassword": "smtp-pass-000",
    "slackWebhookUrl": "https://hooks.slack.com/services/T0/B0/slack-token-111",
}


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_chart_lints_without_findings(value_set: str) -> None:
    report = helm_python.lint(CHART, VALUE_SETS[value_set], strict=True, namespace=NAMESPACE)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_manifest_matches_the_kubernetes_api_schema(
    render: Render, value_set: str, kube_version: str
) -> None:
    docs = render(VALUE_SETS[value_set])
    assert len(docs) >= 10
    for doc in docs:
        kubernetes_validate.validate(doc, kube_version, strict=True)


def test_kubernetes_schema_check_catches_a_misspelt_field(render: Render) -> None:
    deployment = find(render(), "Deployment", "-server")
    pod_spec(deployment)["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSIONS[-1], strict=True)


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"server": {"replicas": "two"}}, "/server/replicas"),
        ({"sever": {"replicas": 2}}, "sever"),
        ({"scheduler": {"replicas": 3}}, "replicas"),
        ({"worker": {"queues": ["ingest", "emails"]}}, "/worker/queues/1"),
        ({"secrets": {"databaseUrl": "mysql://db/fleetwatch"}}, "/secrets/databaseUrl"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"config": {"ingest": {"chunk": "2000"}}}, "/config/ingest/chunk"),
        ({"config": {"ingest": {"chunkSamples": "100k"}}}, "/config/ingest/chunkSamples"),
        ({"config": {"promqlResultsCache": "yes"}}, "/config/promqlResultsCache"),
        ({"config": {"logSearch": {"budgetMs": "150ms"}}}, "/config/logSearch/budgetMs"),
        ({"config": {"logSearch": {"moreBudgetMs": -1}}}, "/config/logSearch/moreBudgetMs"),
        ({"config": {"logSearch": {"budget": 150}}}, "budget"),
    ],
)
def test_wrong_value_is_refused_with_a_message_naming_it(
    render: Render, values: dict[str, Any], named: str
) -> None:
    with pytest.raises(helm_python.HelmValuesError, match=named):
        render(values)
    report = helm_python.lint(CHART, values)
    assert any(named in error for error in report["errors"])


def test_autoscaler_bounds_the_wrong_way_round_are_refused(render: Render) -> None:
    values = {"server": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}}
    with pytest.raises(helm_python.HelmRenderError, match="minReplicas"):
        render(values)


def test_default_release_has_every_part(render: Render) -> None:
    expected = ["ConfigMap", "DaemonSet", "Deployment", "Deployment", "Deployment", "Job", "Job"]
    expected += ["PodDisruptionBudget", "Secret", "Secret", "Secret", "Service"] + ["ServiceAccount"] * 5
    expected += ["NetworkPolicy"] * 4
    assert kinds(render()) == sorted(expected)


def test_server_runs_two_replicas_behind_the_service(render: Render) -> None:
    docs = render()
    server = find(docs, "Deployment", "-server")
    service = find(docs, "Service")
    assert server["spec"]["replicas"] == 2
    assert service["spec"]["selector"] == server["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == container(server)["ports"][0]["name"]
    assert container(server)["command"][0] == "fleetwatch-server"


def test_server_probes_request_the_health_endpoint(render: Render) -> None:
    server = container(find(render(), "Deployment", "-server"))
    for probe, path in (("readinessProbe", HEALTH_PATH), ("livenessProbe", LIVENESS_PATH)):
        get = server[probe]["httpGet"]
        assert get["path"] == path
        assert get["port"] == "http"
        assert {"name": "Host", "value": "localhost"} in get["httpHeaders"]
    config = find(render({"config": {"allowedHosts": ["fleetwatch.example.com"]}}), "ConfigMap")
    assert config["data"]["ALLOWED_HOSTS"] == "fleetwatch.example.com,localhost"


def test_every_workload_sets_resources(render: Render) -> None:
    for doc in render():
        if doc["kind"] in {"Deployment", "DaemonSet", "Job"}:
            resources = container(doc)["resources"]
            assert resources["requests"]["memory"], doc["metadata"]["name"]
            assert resources["limits"]["memory"], doc["metadata"]["name"]


def test_liveness_never_depends_on_postgres_or_redis(render: Render) -> None:
    """A database outage takes pods out of the Service (readiness) but restarts none (liveness)."""
    for value_set in VALUE_SETS.values():
        server = container(find(render(value_set), "Deployment", "-server"))
        readiness = parse_qs(urlsplit(server["readinessProbe"]["httpGet"]["path"]).query)
        liveness = parse_qs(urlsplit(server["livenessProbe"]["httpGet"]["path"]).query)
        assert readiness["scope"] == ["server"]
        assert liveness["scope"] == ["live"]


def test_disruption_budget_keeps_a_server_up(render: Render) -> None:
    docs = render()
    budget = find(docs, "PodDisruptionBudget", "-server")
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"] == find(docs, "Deployment", "-server")["spec"]["selector"]
    assert "PodDisruptionBudget" not in kinds(render({"server": {"podDisruptionBudget": {"enabled": False}}}))


@pytest.mark.parametrize(
    ("server", "budget"),
    [
        ({"replicas": 1}, False),
        ({"replicas": 2}, True),
        ({"replicas": 3, "podDisruptionBudget": {"minAvailable": 3}}, False),
        ({"replicas": 1, "autoscaling": {"enabled": True, "minReplicas": 2}}, True),
        ({"replicas": 5, "autoscaling": {"enabled": True, "minReplicas": 1}}, False),
    ],
)
def test_disruption_budget_only_when_a_drain_can_meet_it(
    render: Render, chart: helm_python.Chart, server: dict[str, Any], budget: bool
) -> None:
    """minAvailable 1 of a single server pod would block every node drain: then there is no budget."""
    docs = render({"server": server})
    assert ("PodDisruptionBudget" in kinds(docs)) is budget
    if budget:
        min_available = find(docs, "PodDisruptionBudget", "-server")["spec"]["minAvailable"]
        server_spec = find(docs, "Deployment", "-server")["spec"]
        hpa = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
        floor = hpa[0]["spec"]["minReplicas"] if hpa else server_spec["replicas"]
        assert floor > min_available
    rendered = chart.render({"server": server}, name=RELEASE, namespace=NAMESPACE)
    notes = next(text for path, text in rendered.items() if path.endswith("NOTES.txt"))
    assert ("No server PodDisruptionBudget" in notes) is not budget


def test_autoscaler_is_optional_and_takes_over_the_replica_count(render: Render) -> None:
    assert "HorizontalPodAutoscaler" not in kinds(render())
    docs = render({"server": {"autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 9}}})
    hpa = find(docs, "HorizontalPodAutoscaler", "-server")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 9)
    assert hpa["spec"]["scaleTargetRef"]["name"] == find(docs, "Deployment", "-server")["metadata"]["name"]
    assert "replicas" not in find(docs, "Deployment", "-server")["spec"]


def test_ingress_is_optional_and_routes_to_the_service(render: Render) -> None:
    assert "Ingress" not in kinds(render())
    docs = render(production_values())
    ingress = find(docs, "Ingress")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert ingress["spec"]["rules"][0]["host"] == "fleetwatch.example.com"
    assert backend == {"name": find(docs, "Service")["metadata"]["name"], "port": {"name": "http"}}
    assert ingress["spec"]["tls"][0]["secretName"] == "fleetwatch-tls"


def test_worker_replicas_and_queues_come_from_values(render: Render) -> None:
    worker = find(
        render({"worker": {"replicas": 5, "queues": ["alerts", "notifications"]}}), "Deployment", "-worker"
    )
    assert worker["spec"]["replicas"] == 5
    assert container(worker)["command"] == ["fleetwatch-worker", "--queues", "alerts,notifications"]


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_exactly_one_scheduler_replaced_with_recreate(render: Render, value_set: str) -> None:
    docs = render(VALUE_SETS[value_set])
    scheduler = find(docs, "Deployment", "-scheduler")
    assert scheduler["spec"]["replicas"] == 1
    assert scheduler["spec"]["strategy"] == {"type": "Recreate"}
    runners = [
        d
        for d in docs
        if d["kind"] in {"Deployment", "DaemonSet"} and "fleetwatch-scheduler" in container(d)["command"]
    ]
    assert runners == [scheduler]
    autoscaled = [d["spec"]["scaleTargetRef"]["name"] for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    assert scheduler["metadata"]["name"] not in autoscaled


def test_agent_mounts_host_proc_and_sys_read_only(render: Render) -> None:
    agent = find(render(), "DaemonSet", "-agent")
    spec = pod_spec(agent)
    host_paths = {v["name"]: v["hostPath"]["path"] for v in spec["volumes"] if "hostPath" in v}
    mounts = {m["mountPath"]: m for m in container(agent)["volumeMounts"]}
    assert host_paths[mounts["/host/proc"]["name"]] == "/proc"
    assert host_paths[mounts["/host/sys"]["name"]] == "/sys"
    assert mounts["/host/proc"]["readOnly"] is True
    assert mounts["/host/sys"]["readOnly"] is True
    assert host_paths[mounts["/host/root"]["name"]] == "/"
    assert mounts["/host/root"]["readOnly"] is True
    assert set(host_paths.values()) == {"/proc", "/sys", "/", AGENT_STATE_DIR}
    assert not mounts[AGENT_STATE_DIR].get("readOnly")
    env = env_map(container(agent))
    assert env["FLEETWATCH_AGENT_PROCFS"]["value"] == "/host/proc"
    assert env["FLEETWATCH_AGENT_HOSTFS"]["value"] == "/host/root"
    assert env["HOST_PROC"]["value"] == "/host/proc"
    assert env["HOST_SYS"]["value"] == "/host/sys"


def test_agent_host_root_mount_can_be_turned_off(render: Render) -> None:
    agent = find(render({"agent": {"hostRoot": False}}), "DaemonSet", "-agent")
    host_paths = {v["hostPath"]["path"] for v in pod_spec(agent)["volumes"] if "hostPath" in v}
    assert host_paths == {"/proc", "/sys", AGENT_STATE_DIR}
    assert "FLEETWATCH_AGENT_HOSTFS" not in env_map(container(agent))


def test_agent_shares_the_node_namespaces_and_still_resolves_services(render: Render) -> None:
    spec = pod_spec(find(render(), "DaemonSet", "-agent"))
    assert spec["hostPID"] is True
    assert spec["hostNetwork"] is True
    assert spec["dnsPolicy"] == "ClusterFirstWithHostNet"
    no_host_network = pod_spec(find(render({"agent": {"hostNetwork": False}}), "DaemonSet", "-agent"))
    assert no_host_network["hostNetwork"] is False
    assert "dnsPolicy" not in no_host_network


def test_agent_tolerates_every_taint_so_it_runs_on_every_node(render: Render) -> None:
    spec = pod_spec(find(render(), "DaemonSet", "-agent"))
    assert {"operator": "Exists"} in spec["tolerations"]
    assert "nodeSelector" not in spec


def test_agent_reports_the_node_name_as_its_host_label(render: Render) -> None:
    env = env_map(container(find(render(), "DaemonSet", "-agent")))
    assert env["FLEETWATCH_AGENT_HOST"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert env["FLEETWATCH_AGENT_REDIS_URL"]["valueFrom"]["secretKeyRef"]["key"] == "REDIS_URL"


def state_volume(agent: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Return (the state dir the agent is told to use, the volume mounted there)."""
    state_dir = env_map(container(agent))["FLEETWATCH_AGENT_STATE_DIR"]["value"]
    mounts = {m["mountPath"]: m["name"] for m in container(agent)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(agent)["volumes"]}
    return state_dir, volumes[mounts[state_dir]]


@pytest.mark.parametrize("node_path", [None, "/data/fleetwatch/agent-prod"])
def test_agent_state_lives_on_the_node_so_a_new_pod_keeps_the_agent_id(
    render: Render, node_path: str | None
) -> None:
    values = {"agent": {"state": {"hostPath": node_path}}} if node_path else None
    agent = find(render(values), "DaemonSet", "-agent")
    state_dir, volume = state_volume(agent)
    assert state_dir == AGENT_STATE_DIR
    assert volume["hostPath"] == {"path": node_path or AGENT_STATE_DIR, "type": "DirectoryOrCreate"}
    assert "emptyDir" not in volume
    # The kubelet creates the directory owned by root (fsGroup skips hostPath): an init container,
    # root with CHOWN only, hands it to the user the agent runs as, on the same volume.
    (init,) = pod_spec(agent)["initContainers"]
    security = pod_spec(agent)["securityContext"]
    assert init["command"] == ["chown", f"{security['runAsUser']}:{security['runAsGroup']}", state_dir]
    assert {m["mountPath"]: m["name"] for m in init["volumeMounts"]} == {state_dir: volume["name"]}
    assert init["securityContext"]["runAsUser"] == 0
    assert init["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["CHOWN"]}
    assert init["securityContext"]["allowPrivilegeEscalation"] is False
    assert "runAsUser" not in container(agent).get("securityContext", {})
    for kube_version in KUBE_VERSIONS:
        kubernetes_validate.validate(agent, kube_version, strict=True)


def test_agent_state_can_fall_back_to_an_empty_dir(render: Render) -> None:
    agent = find(render({"agent": {"state": {"persistOnNode": False}}}), "DaemonSet", "-agent")
    state_dir, volume = state_volume(agent)
    assert state_dir == AGENT_STATE_DIR
    assert "emptyDir" in volume and "hostPath" not in volume
    assert "initContainers" not in pod_spec(agent)
    kubernetes_validate.validate(agent, KUBE_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("node_path", ["relative/dir", "/", ""])
def test_agent_state_node_path_must_be_an_absolute_directory_below_root(
    render: Render, node_path: str
) -> None:
    with pytest.raises(helm_python.HelmValuesError, match="/agent/state/hostPath"):
        render({"agent": {"state": {"hostPath": node_path}}})


def test_agent_can_be_turned_off(render: Render) -> None:
    assert "DaemonSet" not in kinds(render({"agent": {"enabled": False}}))


def test_migrations_job_runs_before_install_and_upgrade(render: Render) -> None:
    docs = render()
    job = find(docs, "Job", "-migrations")
    annotations = job["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    assert container(job)["command"] == ["fleetwatch-migrate"]
    assert pod_spec(job)["restartPolicy"] == "Never"


def test_migrations_job_reads_a_secret_that_exists_before_it_runs(render: Render) -> None:
    docs = render()
    job = find(docs, "Job", "-migrations")
    hook_secret = find(docs, "Secret", "-migrations")
    hook = hook_secret["metadata"]["annotations"]
    assert hook["helm.sh/hook"] == job["metadata"]["annotations"]["helm.sh/hook"]
    assert int(hook["helm.sh/hook-weight"]) < int(job["metadata"]["annotations"]["helm.sh/hook-weight"])
    refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in container(job)["env"] if "valueFrom" in e}
    assert refs == {hook_secret["metadata"]["name"]}
    # The Job's own ServiceAccount is a hook too, created before the Job in pre-install.
    account = find(docs, "ServiceAccount", "-migrations")
    assert pod_spec(job)["serviceAccountName"] == account["metadata"]["name"]
    assert (
        account["metadata"]["annotations"]["helm.sh/hook"] == job["metadata"]["annotations"]["helm.sh/hook"]
    )
    assert int(account["metadata"]["annotations"]["helm.sh/hook-weight"]) < 0


def test_migrations_job_gets_the_same_settings_as_the_server(render: Render) -> None:
    docs = render({"config": {"logLevel": "DEBUG", "retention": {"rawDays": 3}}})
    job_env = env_map(container(find(docs, "Job", "-migrations")))
    config = find(docs, "ConfigMap")["data"]
    assert {name: job_env[name]["value"] for name in config} == config


def decoded_secret(doc: dict[str, Any]) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in doc.get("data", {}).items()}


def test_secrets_never_land_in_a_config_map(render: Render) -> None:
    docs = render({"secrets": SECRETS})
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            assert set(doc["data"]) & SECRET_SETTINGS == set()
        if doc["kind"] != "Secret":
            text = str(doc)
            leaked = [value for value in SECRETS.values() if value in text]
            assert leaked == [], f"{doc['kind']} {doc['metadata']['name']} holds a secret"
    stored = decoded_secret(find(docs, "Secret", RELEASE + "-fleetwatch"))
    assert stored["DATABASE_URL"] == SECRETS["databaseUrl"]
    assert stored["SLACK_WEBHOOK_URL"] == SECRETS["slackWebhookUrl"]


def test_processes_read_secret_settings_from_the_secret(render: Render) -> None:
    docs = render()
    secret_name = find(docs, "Secret", RELEASE + "-fleetwatch")["metadata"]["name"]
    for suffix in ("-server", "-worker", "-scheduler"):
        env = env_map(container(find(docs, "Deployment", suffix)))
        for name in SECRET_SETTINGS:
            assert env[name]["valueFrom"]["secretKeyRef"]["name"] == secret_name, (suffix, name)


def test_existing_secret_replaces_the_chart_secret(render: Render) -> None:
    docs = render(production_values())
    assert "Secret" not in kinds(docs)
    refs = set()
    for doc in docs:
        if doc["kind"] in {"Deployment", "DaemonSet", "Job"}:
            refs |= {
                e["valueFrom"]["secretKeyRef"]["name"]
                for e in container(doc)["env"]
                if "secretKeyRef" in e.get("valueFrom", {})
            }
    assert refs == {"fleetwatch-credentials", "fleetwatch-agent-credentials"}


def test_secret_key_is_generated_when_not_given(render: Render) -> None:
    generated = decoded_secret(find(render(), "Secret", RELEASE + "-fleetwatch"))["SECRET_KEY"]
    assert len(generated) == 50
    given = decoded_secret(find(render({"secrets": SECRETS}), "Secret", RELEASE + "-fleetwatch"))
    assert given["SECRET_KEY"] == SECRETS["secretKey"]


def test_configmap_settings_are_ones_the_server_reads(render: Render) -> None:
    settings_source = (CHART.parent / "collector_server" / "settings.py").read_text()
    for name in find(render(), "ConfigMap")["data"]:
        assert f'"{name}"' in settings_source, f"{name} is not read by collector_server/settings.py"


def test_compose_and_chart_pass_the_same_settings(render: Render, compose: dict[str, Any]) -> None:
    config = set(find(render(), "ConfigMap")["data"])
    passed = set(compose["services"]["server"]["environment"])
    assert passed == config | SECRET_SETTINGS


def test_every_container_runs_a_console_script_as_non_root(render: Render) -> None:
    scripts = console_scripts()
    for doc in render(production_values()):
        if doc["kind"] in {"Deployment", "DaemonSet", "Job"}:
            assert container(doc)["command"][0] in scripts
            assert pod_spec(doc)["securityContext"]["runAsNonRoot"] is True
            assert container(doc)["image"] == "registry.example.com/platform/fleetwatch:0.1.0"


def test_notes_tell_how_to_reach_the_api_and_the_admin(chart: helm_python.Chart) -> None:
    default = chart.render(None, name=RELEASE, namespace=NAMESPACE)
    notes = next(text for path, text in default.items() if path.endswith("NOTES.txt"))
    assert f"kubectl port-forward --namespace {NAMESPACE} svc/{RELEASE}-fleetwatch" in notes
    assert "http://127.0.0.1:8000/admin/" in notes
    assert "/api/v1/monitoring/health" in notes
    assert "fleetwatch-manage createsuperuser" in notes
    production = chart.render(production_values(), name=RELEASE, namespace=NAMESPACE)
    notes = next(text for path, text in production.items() if path.endswith("NOTES.txt"))
    assert "https://fleetwatch.example.com/admin/" in notes


def test_probe_paths_can_be_changed(render: Render) -> None:
    server = container(find(render({"server": {"healthPath": "/readyz"}}), "Deployment", "-server"))
    assert server["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert server["livenessProbe"]["httpGet"]["path"] == LIVENESS_PATH
    server = container(find(render({"server": {"livenessPath": "/livez"}}), "Deployment", "-server"))
    assert server["readinessProbe"]["httpGet"]["path"] == HEALTH_PATH
    assert server["livenessProbe"]["httpGet"]["path"] == "/livez"


def test_sharded_streams_on_a_cluster_and_a_read_replica_reach_every_process(render: Render) -> None:
    values = {
        "config": {"streams": {"shards": 8, "redisCluster": True}},
        "secrets": {
            "streamRedisUrl": "redis://fleetwatch:pw@redis-cluster-0.redis:6379/0",
            "databaseReplicaUrl": "postgres://fw:pw@pg-replica:5432/fleetwatch",
        },
    }
    docs = render(values)
    config = find(docs, "ConfigMap")["data"]
    assert (config["STREAM_SHARDS"], config["STREAM_REDIS_CLUSTER"]) == ("8", "true")
    agent = env_map(container(find(docs, "DaemonSet", "-agent")))
    assert (
        agent["STREAM_SHARDS"]["value"] == "8" and agent["FLEETWATCH_AGENT_REDIS_CLUSTER"]["value"] == "true"
    )
    stored = decoded_secret(find(docs, "Secret", RELEASE + "-fleetwatch"))
    assert stored["STREAM_REDIS_URL"].startswith("redis://") and stored["DATABASE_REPLICA_URL"].endswith(
        "/fleetwatch"
    )
    worker = env_map(container(find(docs, "Deployment", "-worker")))
    assert worker["STREAM_REDIS_URL"]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert worker["DATABASE_REPLICA_URL"]["valueFrom"]["secretKeyRef"]["key"] == "DATABASE_REPLICA_URL"
    default = find(render(), "ConfigMap")["data"]
    assert (default["STREAM_SHARDS"], default["STREAM_REDIS_CLUSTER"]) == ("1", "false")
    assert "STREAM_REDIS_URL" not in decoded_secret(find(render(), "Secret", RELEASE + "-fleetwatch"))
