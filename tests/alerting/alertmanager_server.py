"""A real Alertmanager (Debian's prometheus-alertmanager) on a free loopback port, for tests."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager") or "prometheus-alertmanager"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def config_yaml(webhook_url: str, token: str) -> str:
    """One route to a webhook receiver with no waiting: every change is notified within a second."""
    return json.dumps(  # JSON is YAML
        {
            "route": {
                "receiver": "fleetwatch",
                "group_by": ["alertname"],
                "group_wait": "0s",
                "group_interval": "1s",
                "repeat_interval": "1h",
            },
            "receivers": [
                {
                    "name": "fleetwatch",
                    "webhook_configs": [
                        {
                            "url": webhook_url,
                            "send_resolved": True,
                            "http_config": {"authorization": {"type": "Token", "credentials": token}},
                        }
                    ],
                }
            ],
        }
    )


@contextmanager
def alertmanager(tmp: Path, webhook_url: str, token: str) -> Iterator[str]:
    """Start Alertmanager (no clustering) and yield its base URL; stop it at the end."""
    (tmp / "alertmanager.yml").write_text(config_yaml(webhook_url, token))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp / "alertmanager.log").open("wb")
    proc = subprocess.Popen(
        [
            BINARY,
            f"--config.file={tmp / 'alertmanager.yml'}",
            f"--storage.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: _ready(base) or proc.poll() is not None, what="Alertmanager to start")
        assert proc.poll() is None, (tmp / "alertmanager.log").read_text()
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/-/ready", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def get_alerts(base: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(
        base + "/api/v2/alerts?active=true&silenced=true&inhibited=true", timeout=5
    ) as r:
        return json.loads(r.read())
