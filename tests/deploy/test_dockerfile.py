"""The container image recipe: multi-stage, slim, non-root, a health check, and a complete build context."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .manifests import ROOT, Stage, compose_binary, console_scripts, parse_dockerfile

DOCKERFILE = ROOT / "Dockerfile"
BUILD_TOOLS = ("build-essential", "gcc", "g++", "make", "python3-dev", "libpq-dev")


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


def test_image_is_built_in_stages_on_a_slim_python_base(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    assert all("slim" in stage.base for stage in stages)
    final = stages[-1]
    assert any(f"--from={stages[0].name}" in copy for copy in final.args("COPY"))


def test_build_stage_installs_the_agent_and_server_extras(stages: list[Stage]) -> None:
    runs = " ".join(stages[0].args("RUN"))
    assert 'pip install ".[agent,server]"' in runs


def test_final_stage_has_no_build_tools(stages: list[Stage]) -> None:
    final_runs = " ".join(stages[-1].args("RUN"))
    assert "apt-get install" not in final_runs
    assert [tool for tool in BUILD_TOOLS if tool in final_runs] == []


def test_final_stage_runs_as_a_non_root_user(stages: list[Stage]) -> None:
    (user,) = stages[-1].args("USER")
    assert user.split(":")[0] not in {"root", "0"}
    assert "useradd" in " ".join(stages[-1].args("RUN"))


def test_health_check_requests_the_server_health_endpoint(stages: list[Stage]) -> None:
    (check,) = stages[-1].args("HEALTHCHECK")
    assert "/api/v1/monitoring/health" in check
    assert "--interval=" in check


def test_default_command_is_the_server_and_a_console_script(stages: list[Stage]) -> None:
    (cmd,) = stages[-1].args("CMD")
    command = json.loads(cmd)
    assert command[0] == "fleetwatch-server"
    assert command[0] in console_scripts()
    assert "8000" in stages[-1].args("EXPOSE")


def build_context_files() -> list[str]:
    """List the files Docker sends as build context, using docker-py's .dockerignore matcher.

    docker-py comes with Debian's docker-compose; its interpreter is the one in the script's shebang.
    """
    script = Path(compose_binary())
    interpreter = script.read_text(errors="replace").splitlines()[0].removeprefix("#!").strip()
    code = (
        "import json, sys; from docker.utils.build import exclude_paths; "
        "patterns = [p.strip() for p in open(sys.argv[2]).read().splitlines() "
        "if p.strip() and not p.startswith('#')]; "
        "print(json.dumps(sorted(exclude_paths(sys.argv[1], patterns))))"
    )
    args = [interpreter, "-c", code, str(ROOT), str(ROOT / ".dockerignore")]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=True)
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def context_files() -> list[str]:
    return build_context_files()


def test_build_context_leaves_out_the_virtualenv_git_and_tests(context_files: list[str]) -> None:
    assert "pyproject.toml" in context_files
    assert any(path.startswith("collector_server/") for path in context_files)
    for excluded in (".venv/", ".git/", "tests/", "helm/", "bench/"):
        assert not any(path.startswith(excluded) for path in context_files), excluded
    assert not any("__pycache__" in path for path in context_files)


@pytest.mark.slow
def test_build_context_builds_a_wheel_with_every_package(context_files: list[str], tmp_path: Path) -> None:
    """Build the project from exactly the files Docker would send, as the image's pip install does."""
    context = tmp_path / "context"
    for relative in context_files:
        if (ROOT / relative).is_dir():
            continue
        target = context / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, target)
    wheels = tmp_path / "wheels"
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(context)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = wheels.glob("fleetwatch-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(archive.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    for package in ("agent", "collector_server", "alerting_worker", "shared"):
        assert f"{package}/__init__.py" in names, package
    assert any(n.startswith("collector_server/") and "/migrations/" in n for n in names)
    for script in console_scripts():
        assert f"{script} =" in entry_points
