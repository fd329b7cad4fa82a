"""docker-compose.yml as Debian's docker-compose resolves it (no Docker engine needed)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .manifests import (
    COMPOSE_FILE,
    ENV_EXAMPLE,
    console_scripts,
    port_mapping,
    resolved_compose,
    run_compose,
    volume_mount,
)

APP_SERVICES = ("server", "worker", "scheduler")
EXPECTED_COMMANDS = {
    "migrate": "fleetwatch-migrate",
    "server": "fleetwatch-server",
    "worker": "fleetwatch-worker",
    "scheduler": "fleetwatch-scheduler",
    "agent": "fleetwatch-agent",
}


def write_env(tmp_path: Path, **overrides: str) -> Path:
    """Write .env.example with some variables changed (or removed when the value is None)."""
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        name = line.split("=", 1)[0]
        if not line.startswith("#") and name in overrides:
            continue
        lines.append(line)
    lines += [f"{name}={value}" for name, value in overrides.items() if value is not None]
    path = tmp_path / "test.env"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_compose_file_resolves_with_the_example_settings(compose: dict[str, Any]) -> None:
    expected = {"postgres", "redis", "migrate", "enroll-agent", "server", "worker", "scheduler", "agent"}
    assert set(compose["services"]) == expected


def test_missing_postgres_password_stops_compose_naming_the_variable(tmp_path: Path) -> None:
    result = run_compose(write_env(tmp_path, POSTGRES_PASSWORD=None), "config", "-q")
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr


def test_empty_secret_key_stops_compose_naming_the_variable(tmp_path: Path) -> None:
    result = run_compose(write_env(tmp_path, SECRET_KEY=""), "config", "-q")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_settings_from_the_env_file_reach_the_containers(tmp_path: Path) -> None:
    env = write_env(tmp_path, POSTGRES_PASSWORD="s3cret", SERVER_PORT="9100", WORKER_QUEUES="alerts,ingest")
    services = resolved_compose(env)["services"]
    assert services["server"]["environment"]["DATABASE_URL"] == (
        "postgres://fleetwatch:s3cret@postgres:5432/fleetwatch"
    )
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "s3cret"
    assert [port_mapping(p)[1:] for p in services["server"]["ports"]] == [(9100, 8000)]
    assert services["worker"]["command"] == ["fleetwatch-worker", "--queues", "alerts,ingest"]


def test_redis_never_evicts_and_keeps_an_append_only_file(compose: dict[str, Any]) -> None:
    command = compose["services"]["redis"]["command"]
    flags = dict(zip(command[1::2], command[2::2], strict=False))
    assert flags["--maxmemory-policy"] == "noeviction"
    assert flags["--appendonly"] == "yes"


def test_postgres_and_redis_keep_their_data_in_named_volumes(compose: dict[str, Any]) -> None:
    for name, target in (("postgres", "/var/lib/postgresql/data"), ("redis", "/data")):
        sources = {m[1]: m[0] for m in map(volume_mount, compose["services"][name]["volumes"])}
        assert sources[target] in compose["volumes"], name


def test_app_processes_wait_for_healthy_stores_and_a_finished_migration(compose: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        depends = compose["services"][name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
    migrate = compose["services"]["migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for store in ("postgres", "redis"):
        assert compose["services"][store]["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}


def test_migrate_runs_once_and_is_not_restarted(compose: dict[str, Any]) -> None:
    assert compose["services"]["migrate"]["restart"] == "no"
    assert compose["services"]["server"]["restart"] == "unless-stopped"


def test_worker_can_be_scaled_because_it_has_no_fixed_name_or_host_port(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker
    assert worker["stop_grace_period"] in {"1m", "1m0s"}  # compose v1 / v2 spelling


def test_scheduler_is_a_single_unscaled_service(compose: dict[str, Any]) -> None:
    scheduler = compose["services"]["scheduler"]
    assert scheduler.get("scale", 1) == 1
    assert scheduler.get("deploy", {}).get("replicas", 1) == 1
    schedulers = [n for n, s in compose["services"].items() if "fleetwatch-scheduler" in s.get("command", [])]
    assert schedulers == ["scheduler"]


def test_server_health_check_requests_the_health_endpoint(compose: dict[str, Any]) -> None:
    check = compose["services"]["server"]["healthcheck"]
    assert check["test"][0] == "CMD"
    assert any("/api/v1/monitoring/health" in part for part in check["test"])
    assert "localhost" in compose["services"]["server"]["environment"]["ALLOWED_HOSTS"].split(",")


def test_agent_sees_the_host_not_its_container(compose: dict[str, Any]) -> None:
    agent = compose["services"]["agent"]
    assert agent["network_mode"] == "host"
    assert agent["pid"] == "host"
    mounts = {mount[1]: mount for mount in map(volume_mount, agent["volumes"])}
    assert mounts["/host/proc"] == ("/proc", "/host/proc", True)
    assert mounts["/host/sys"] == ("/sys", "/host/sys", True)
    assert mounts["/host/root"] == ("/", "/host/root", True)
    env = agent["environment"]
    assert env["FLEETWATCH_AGENT_PROCFS"] == "/host/proc"
    assert env["FLEETWATCH_AGENT_HOSTFS"] == "/host/root"
    assert env["HOST_PROC"] == "/host/proc"
    assert env["HOST_SYS"] == "/host/sys"


def test_agent_does_not_combine_an_init_binary_with_the_host_pid_namespace(compose: dict[str, Any]) -> None:
    # Podman refuses to create such a container: "cannot add init binary as PID 1 (PID namespace
    # isn't private)". The other processes keep the image block's init.
    agent = compose["services"]["agent"]
    assert agent["pid"] == "host"
    assert not agent.get("init", False)
    assert all(compose["services"][name].get("init") is True for name in APP_SERVICES)


def test_agent_reaches_redis_on_its_loopback_published_port(tmp_path: Path) -> None:
    services = resolved_compose(write_env(tmp_path, REDIS_HOST_PORT="16379"))["services"]
    url = urlparse(services["agent"]["environment"]["FLEETWATCH_AGENT_REDIS_URL"])
    (published,) = services["redis"]["ports"]
    assert (url.hostname, url.port) == ("127.0.0.1", 16379)
    assert port_mapping(published) == ("127.0.0.1", 16379, 6379)


def test_every_process_runs_a_console_script_named_in_the_contracts(compose: dict[str, Any]) -> None:
    scripts = console_scripts()
    for service, command in EXPECTED_COMMANDS.items():
        assert compose["services"][service]["command"][0] == command
        assert command in scripts


def test_app_services_get_the_same_settings(compose: dict[str, Any]) -> None:
    envs = [compose["services"][name]["environment"] for name in ("migrate", *APP_SERVICES)]
    assert all(env == envs[0] for env in envs)


def test_every_compose_variable_is_documented_in_env_example() -> None:
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE_FILE.read_text()))
    documented = documented_variables()
    assert used - set(documented) == set(), "add these to .env.example with a comment"
    assert set(documented) - used - {"COMPOSE_PROJECT_NAME"} == set(), ".env.example has unused variables"
    for name, comment in documented.items():
        assert comment, f"{name} in .env.example has no comment above it"


def documented_variables() -> dict[str, str]:
    """Map each variable in .env.example to the comment block above it (a block covers the lines below)."""
    documented: dict[str, str] = {}
    comment: list[str] = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        if not line.strip():
            comment = []
        elif line.startswith("#"):
            comment.append(line.lstrip("# "))
        else:
            documented[line.split("=", 1)[0]] = " ".join(comment)
    return documented


ENROLL = "enroll-agent"


def enroll_script(compose: dict[str, Any]) -> str:
    """The enroll-agent service's shell script, as the container's sh gets it (`$$` is `$`)."""
    command = compose["services"][ENROLL]["command"]
    assert command[:2] == ["sh", "-c"], command
    return command[2].replace("$$", "$")


def test_agent_is_enrolled_by_a_one_shot_service_that_writes_where_the_agent_reads(
    compose: dict[str, Any],
) -> None:
    from agent.config import CREDENTIAL_FILE

    services = compose["services"]
    agent, enroll = services["agent"], services[ENROLL]
    # The agent starts only after the enrollment step finished, which runs after the migration.
    assert agent["depends_on"][ENROLL]["condition"] == "service_completed_successfully"
    assert enroll["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert enroll["restart"] == "no"
    assert enroll["environment"]["DATABASE_URL"] == services["server"]["environment"]["DATABASE_URL"]
    # The credential file is in a volume mounted at the agent's state directory, where it reads it.
    state_dir = agent["environment"]["FLEETWATCH_AGENT_STATE_DIR"]
    agent_mounts = {m[1]: m for m in map(volume_mount, agent["volumes"])}
    enroll_mounts = {m[1]: m for m in map(volume_mount, enroll["volumes"])}
    volume = agent_mounts[state_dir][0]
    assert volume in compose["volumes"]
    script = enroll_script(compose)
    written = re.search(r"--credential-file (\S+)", script).group(1)
    written_dir, written_name = written.rsplit("/", 1)
    assert written_name == CREDENTIAL_FILE
    assert enroll_mounts[written_dir][0] == volume
    assert "--if-missing" in script.split()
    # The agent is not given another credential that would shadow the file.
    assert not agent["environment"].get("FLEETWATCH_AGENT_CREDENTIAL")
    assert "FLEETWATCH_AGENT_CREDENTIAL_FILE" not in agent["environment"]
    # The host's name file is read-only in the enrollment step.
    assert enroll_mounts["/host/etc/hostname"][2] is True


def test_enrollment_settings_from_the_env_file_reach_the_enrollment_step(tmp_path: Path) -> None:
    env = write_env(tmp_path, FLEETWATCH_AGENT_HOST="box-7", FLEETWATCH_AGENT_ORGANIZATION="acme")
    enroll = resolved_compose(env)["services"][ENROLL]["environment"]
    assert enroll["FLEETWATCH_AGENT_HOST"] == "box-7"
    assert enroll["FLEETWATCH_AGENT_ORGANIZATION"] == "acme"
