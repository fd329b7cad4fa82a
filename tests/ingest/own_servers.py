"""Redis and Postgres servers a test owns, so it can stop and restart them (never the machine's)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis as redis_lib

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2) -> float:
    """Poll `predicate` until it is true; return the seconds it took (fail after `timeout`)."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - started


class OwnRedis:
    """A redis-server on a free port keeping an append-only file in `folder` (survives restarts)."""

    def __init__(self, folder: Path, appendonly: bool = True, save: str = "") -> None:
        self.folder, self.port = folder, free_port()
        self.appendonly, self.save = appendonly, save
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis_lib.Redis:
        return redis_lib.Redis(port=self.port, socket_timeout=5)

    def start(self) -> OwnRedis:
        args = [
            shutil.which("redis-server") or "redis-server",
            "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
            "--save", self.save, "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec", "--maxmemory-policy", "noeviction",
        ]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, 20, "redis-server to answer PING")
        return self

    def stop(self) -> None:
        """Shut down (SIGTERM: Redis flushes its append-only file first)."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)

    def _answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis_lib.RedisError:
            return False


class OwnPostgres:
    """A Postgres cluster (initdb, pg_ctl) on a free port, run as the postgres OS user."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="fw-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        shutil.chown(self.root, "postgres", "postgres")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/fleetwatch"

    def _as_postgres(self, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            check=True,
            capture_output=True,
            cwd=self.root,
            timeout=120,
        )

    def init(self) -> OwnPostgres:
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")
        return self

    def start(self) -> None:
        self._as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "pg.log"), "-w",
            "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off", "start",
        )  # fmt: skip

    def stop(self) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def create_database(self) -> None:
        import psycopg

        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE fleetwatch")

    def query(self, sql: str) -> int:
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/fleetwatch") as conn:
            return conn.execute(sql).fetchone()[0]

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def log_text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def process(args: list[str], env: dict[str, str], log: Path, root: str) -> subprocess.Popen:
    """Start `python -m alerting_worker ARGS` writing to `log` (a file: a pipe nobody reads fills up)."""
    import sys

    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "alerting_worker", *args],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop_processes(*procs: subprocess.Popen) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def env_without(names: tuple[str, ...]) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in names}
