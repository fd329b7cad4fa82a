"""Helpers to run the real Compose implementation and to read Helm's rendered manifests."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm"
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
RELEASE = "fw"
NAMESPACE = "monitoring"
# Secret settings: never in a ConfigMap, always from a Secret.
SECRET_SETTINGS = {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "SMTP_PASSWORD", "SLACK_WEBHOOK_URL"}


def compose_binary() -> str:
    """Return the docker-compose executable, failing with the install command when it is missing."""
    found = shutil.which("docker-compose")
    if not found:
        pytest.fail("docker-compose is not installed: apt-get install -y docker-compose (see .ci/run)")
    return found


def run_compose(env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run docker-compose on the repo's file with env_file as the only source of settings."""
    clean_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    command = [compose_binary(), "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE)]
    command += ["--env-file", str(env_file), *args]
    return subprocess.run(command, env=clean_env, capture_output=True, text=True, timeout=60, check=False)


def resolved_compose(env_file: Path) -> dict[str, Any]:
    """Return the file as docker-compose resolves it (interpolated, merged, normalised)."""
    result = run_compose(env_file, "config")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def production_values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "ci" / "production-values.yaml").read_text())


def split_manifests(rendered: dict[str, str]) -> list[dict[str, Any]]:
    """Parse Helm's output into objects, leaving out NOTES.txt and templates that rendered empty."""
    docs: list[dict[str, Any]] = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs += [doc for doc in yaml.safe_load_all(text) if doc]
    return docs


def find(docs: list[dict[str, Any]], kind: str, suffix: str = "") -> dict[str, Any]:
    """Return the one object of this kind whose name ends with suffix."""
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(suffix)]
    names = [d["metadata"]["name"] for d in matches]
    assert len(matches) == 1, f"expected one {kind} named *{suffix}, found {names}"
    return matches[0]


def kinds(docs: list[dict[str, Any]]) -> list[str]:
    return sorted(d["kind"] for d in docs)


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = pod_spec(workload)["containers"]
    assert len(containers) == 1
    return containers[0]


def env_map(ctr: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in ctr.get("env", [])}


def console_scripts() -> set[str]:
    """The commands pyproject.toml installs (docs/contracts.md fixes their names)."""
    import tomllib

    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return set(data["project"]["scripts"])


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [rest for word, rest in self.instructions if word == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """Split a Dockerfile into stages of (INSTRUCTION, arguments), joining continued lines."""
    stages: list[Stage] = []
    logical = text.replace("\\\n", " ")
    for raw in logical.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(base=parts[0], name=name))
        elif stages:
            stages[-1].instructions.append((word, " ".join(rest.split())))
    return stages


def port_mapping(entry: str | dict[str, Any]) -> tuple[str, int, int]:
    """Return (host_ip, published, target) from the short form (compose v1) or the long form (v2)."""
    if isinstance(entry, dict):
        return entry.get("host_ip", ""), int(entry["published"]), int(entry["target"])
    parts = entry.split("/")[0].split(":")
    host_ip = parts[0] if len(parts) == 3 else ""
    return host_ip, int(parts[-2]), int(parts[-1])


def volume_mount(entry: str | dict[str, Any]) -> tuple[str, str, bool]:
    """Return (source, target, read_only) from the short form (compose v1) or the long form (v2)."""
    if isinstance(entry, dict):
        return entry["source"], entry["target"], bool(entry.get("read_only", False))
    source, target, *mode = entry.split(":")
    return source, target, "ro" in mode
