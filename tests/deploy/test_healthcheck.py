"""The container health check command, run against a real local HTTP server."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from .manifests import ROOT, parse_dockerfile

HEALTH_URL = "http://127.0.0.1:8000/api/v1/monitoring/health"


class HealthServer(ThreadingHTTPServer):
    status = 200
    seen: list[tuple[str, str]]


class Handler(BaseHTTPRequestHandler):
    server: HealthServer

    def do_GET(self) -> None:
        self.server.seen.append((self.path, self.headers.get("Host", "")))
        ok = self.path == "/api/v1/monitoring/health?scope=server"
        self.send_response(self.server.status if ok else 404)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[HealthServer]:
    server = HealthServer(("127.0.0.1", 0), Handler)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def dockerfile_check() -> list[str]:
    (check,) = parse_dockerfile((ROOT / "Dockerfile").read_text())[-1].args("HEALTHCHECK")
    return json.loads(check.split(" CMD ", 1)[1])


def run_check(command: list[str], port: int) -> int:
    """Run the check's Python code with this interpreter, pointed at the test server's port."""
    assert command[:2] == ["python", "-c"]
    code = command[2].replace(HEALTH_URL, HEALTH_URL.replace(":8000", f":{port}"))
    assert str(port) in code, "the check no longer requests " + HEALTH_URL
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=30, check=False
    ).returncode


@pytest.mark.parametrize("source", ["Dockerfile", "docker-compose.yml"])
def test_health_check_passes_on_200_and_fails_on_503(
    health_server: HealthServer, compose: dict[str, Any], source: str
) -> None:
    command = (
        dockerfile_check()
        if source == "Dockerfile"
        else compose["services"]["server"]["healthcheck"]["test"][1:]
    )
    port = health_server.server_address[1]
    assert run_check(command, port) == 0
    health_server.status = 503
    assert run_check(command, port) != 0
    assert health_server.seen == [("/api/v1/monitoring/health?scope=server", "localhost")] * 2
