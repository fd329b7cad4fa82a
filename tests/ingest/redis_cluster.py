"""A real Redis Cluster of three masters that a test owns: start, kill one master, start it again.

Ports come from FLEETWATCH_TEST_PORTS (``first-last``, default 21700-21799), so tests of
several checkouts on one machine do not collide; the cluster bus uses port + 10000.
Every node keeps an append-only file fsynced on every write, so a master killed with SIGKILL
comes back with every entry it acknowledged.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis
from redis.cluster import ClusterNode, RedisCluster


def port_range() -> range:
    first, _, last = os.environ.get("FLEETWATCH_TEST_PORTS", "21700-21799").partition("-")
    return range(int(first), int(last) + 1)


def _free(port: int) -> bool:
    for candidate in (port, port + 10000):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                return False
    return True


def free_ports(count: int, taken: set[int] | None = None) -> list[int]:
    """`count` ports of the test range whose bus port (port + 10000) is free too."""
    taken = taken or set()
    found = [port for port in port_range() if port not in taken and _free(port)][:count]
    if len(found) < count:
        raise AssertionError(f"fewer than {count} free ports in {port_range()}")
    return found


def wait_until(predicate, timeout: float, what: str, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class RedisClusterNodes:
    """Three redis-server masters in cluster mode in `folder`, joined with redis-cli --cluster create."""

    def __init__(self, folder: Path, masters: int = 3, appendfsync: str = "always") -> None:
        self.folder = folder
        self.appendfsync = appendfsync
        self.ports = free_ports(masters)
        self.procs: dict[int, subprocess.Popen] = {}

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=5)

    def client(self) -> RedisCluster:
        """A cluster client starting from the nodes that run now (any one of them may be down)."""
        live = [port for port in self.ports if port in self.procs] or self.ports
        nodes = [ClusterNode("127.0.0.1", port) for port in live]
        return RedisCluster(startup_nodes=nodes, socket_timeout=5)

    def start_node(self, port: int) -> None:
        data = self.folder / str(port)
        data.mkdir(parents=True, exist_ok=True)
        args = [
            shutil.which("redis-server") or "redis-server",
            "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", "2000", "--cluster-require-full-coverage", "no",
            "--appendonly", "yes", "--appendfsync", self.appendfsync, "--save", "",
            "--maxmemory-policy", "noeviction",
        ]  # fmt: skip
        log = open(data / "redis.log", "ab")  # noqa: SIM115 - the process owns it
        self.procs[port] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: self._answers(port), 20, f"redis-server on {port}")

    def _answers(self, port: int) -> bool:
        try:
            return bool(self.node(port).ping())
        except redis.RedisError:
            return False

    def start(self) -> RedisClusterNodes:
        for port in self.ports:
            self.start_node(port)
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports), "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.wait_ok()
        return self

    def wait_ok(self) -> None:
        def ok() -> bool:
            try:
                return all(self.node(p).cluster("info")["cluster_state"] == "ok" for p in self.ports)
            except redis.RedisError:
                return False

        wait_until(ok, 30, "cluster_state:ok on every node")

    def master_of(self, key: str) -> int:
        """The port of the master serving `key`'s slot."""
        return int(self.client().get_node_from_key(key).port)

    def kill(self, port: int) -> None:
        """SIGKILL one master (no shutdown save: only its fsynced append-only file survives)."""
        proc = self.procs.pop(port)
        proc.kill()
        proc.wait(timeout=10)

    def stop(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        for proc in self.procs.values():
            proc.wait(timeout=10)
        self.procs.clear()
