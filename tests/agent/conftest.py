"""Agent test fixtures: a private redis-server that tests stop and restart, and a real agent process."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

REPO = Path(__file__).resolve().parents[2]
AGENT_SCRIPT = Path(sys.executable).with_name("fleetwatch-agent")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float = 10.0, step: float = 0.05):
    """Poll ``predicate`` until it returns something truthy; return that or fail the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(step)
    raise AssertionError(f"condition not met within {timeout}s")


class PrivateRedis:
    """A redis-server of our own on a free port; ``stop()`` saves its data so ``start()`` brings it back."""

    def __init__(self, directory: Path, extra: list[str] | None = None) -> None:
        self.port = free_port()
        self.directory = directory
        self.extra = extra or []
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5, retry=Retry(NoBackoff(), 0))

    def start(self) -> None:
        args = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
            *self.extra,
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers)
        serving = self.client().info("server")["process_id"]
        assert serving == self.process.pid, f"port {self.port} is served by another redis (pid {serving})"

    def _answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        """Shut down after writing an RDB snapshot, so entries already added survive the restart."""
        if self.process is None:
            return
        with contextlib.suppress(redis.ConnectionError):
            self.client().shutdown(save=True)
        self.process.wait(timeout=10)
        self.process = None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed; the agent tests need it")
    data = tmp_path / "redis-data"
    data.mkdir()
    server = PrivateRedis(data)
    server.start()
    yield server
    server.kill()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path


def short_socket_path(state_dir: Path) -> str:
    """A socket path unique to ``state_dir`` and short enough for a Unix address (107 bytes)."""
    digest = hashlib.sha1(str(state_dir).encode()).hexdigest()[:16]
    return f"/tmp/fw-agent-{digest}.sock"


def agent_env(state_dir: Path, redis_url: str = "redis://127.0.0.1:1/0", **extra: str) -> dict[str, str]:
    """Environment for a child agent process: private state, no inherited agent settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETWATCH_") and k not in {"REDIS_URL"}}
    env.update(
        {
            "FLEETWATCH_AGENT_STATE_DIR": str(state_dir),
            "FLEETWATCH_AGENT_REDIS_URL": redis_url,
            "FLEETWATCH_AGENT_CONFIG": "",
            # The local endpoint is on by default: a socket of this test's own, never /run/fleetwatch.
            "FLEETWATCH_AGENT_SOCKET": short_socket_path(state_dir),
            "PYTHONPATH": str(REPO),
        }
    )
    env.update(extra)
    return env


class AgentProcess:
    """The real ``fleetwatch-agent`` console script running in the background."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.process = subprocess.Popen(
            [str(AGENT_SCRIPT), *args], env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )

    def stop(self, timeout: float = 20.0) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        _, stderr = self.process.communicate(timeout=timeout)
        return self.process.returncode, stderr.decode()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate(timeout=10)


@pytest.fixture
def start_agent() -> Iterator:
    started: list[AgentProcess] = []

    def start(env: dict[str, str], *args: str) -> AgentProcess:
        agent = AgentProcess(env, *args)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.kill()
