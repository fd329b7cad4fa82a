"""Run the whole stack on this machine: server, worker, scheduler and an agent watching this host.

    fleetwatch-local up      # create the database, migrate, start everything, print how to log in
    fleetwatch-local status
    fleetwatch-local down

Uses the machine's Postgres and Redis (DATABASE_URL / REDIS_URL, defaulting to
127.0.0.1). Logs and pid files go to ./var/. The end-to-end test starts the same
processes through `Stack`.

`up` hands the processes to a small supervisor (`fleetwatch-local supervise`, its own log in
var/log/supervisor.log) that restarts one that dies, with backoff (1 s, doubling up to 60 s;
back to 1 s once a process has stayed up a minute), and writes each restart into that
process's log too.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB_URL = "postgres://postgres@127.0.0.1:5432/fleetwatch"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
PROCESSES = ("server", "worker", "scheduler", "agent")
RESTART_FIRST_DELAY = 1.0
RESTART_MAX_DELAY = 60.0
STABLE_AFTER_SECONDS = 60.0


@dataclass
class Stack:
    """The four long-running processes, started from this Python environment."""

    var: Path
    env: dict[str, str]
    port: int = 8000
    agent_interval: float = 10.0
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def command(self, name: str) -> list[str]:
        py = sys.executable
        return {
            "server": [py, "-m", "collector_server", "server", "--dev", "--bind", f"127.0.0.1:{self.port}"],
            "worker": [py, "-m", "alerting_worker", "worker"],
            "scheduler": [py, "-m", "alerting_worker", "scheduler"],
            "agent": [py, "-m", "agent", "--interval", str(self.agent_interval)],
        }[name]

    def start(self, names: tuple[str, ...] = PROCESSES) -> None:
        (self.var / "log").mkdir(parents=True, exist_ok=True)
        (self.var / "run").mkdir(parents=True, exist_ok=True)
        for name in names:
            self.start_one(name)

    def start_one(self, name: str) -> subprocess.Popen:
        (self.var / "log").mkdir(parents=True, exist_ok=True)
        (self.var / "run").mkdir(parents=True, exist_ok=True)
        with open(self.var / "log" / f"{name}.log", "ab") as log:  # the child keeps its own copy
            proc = subprocess.Popen(
                self.command(name),
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs[name] = proc
        (self.var / "run" / f"{name}.pid").write_text(str(proc.pid))
        return proc

    def note(self, name: str, message: str) -> None:
        """Write a supervisor line into the process's own log and to stdout (the supervisor's log)."""
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} fleetwatch-local: {message}\n"
        with open(self.var / "log" / f"{name}.log", "a") as log:
            log.write(line)
        sys.stdout.write(line)
        sys.stdout.flush()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.time() + 15
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def wait_http(self, path: str, timeout: float = 60.0, ok=(200,)) -> tuple[int, str]:
        deadline = time.time() + timeout
        status, body = 0, ""
        while time.time() < deadline:
            status, body = http_get(f"http://127.0.0.1:{self.port}{path}")
            if status in ok:
                return status, body
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{', '.join(dead)} exited; see {self.var / 'log'}")
            time.sleep(0.5)
        return status, body


class Supervisor:
    """Restart the stack's processes when they die, with backoff, until stopped."""

    def __init__(self, stack: Stack, names: tuple[str, ...] = PROCESSES) -> None:
        self.stack, self.names = stack, names
        self.delay = dict.fromkeys(names, RESTART_FIRST_DELAY)
        self.started_at: dict[str, float] = {}
        self.restart_at: dict[str, float] = {}
        self.restarts = dict.fromkeys(names, 0)
        self.stopping = False

    def run(self, poll: float = 0.5) -> None:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        for name in self.names:
            self._start(name)
        try:
            while not self.stopping:
                self.check()
                time.sleep(poll)
        finally:
            self.stack.stop()

    def check(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for name in self.names:
            proc = self.stack.procs.get(name)
            if proc is None or proc.poll() is None:
                continue
            if name not in self.restart_at:
                if now - self.started_at.get(name, now) >= STABLE_AFTER_SECONDS:
                    self.delay[name] = RESTART_FIRST_DELAY
                wait = self.delay[name]
                self.restart_at[name] = now + wait
                self.delay[name] = min(RESTART_MAX_DELAY, wait * 2)
                self.stack.note(
                    name,
                    f"{name} (pid {proc.pid}) exited with code {proc.returncode}; restarting in {wait:.0f}s",
                )
            elif now >= self.restart_at[name]:
                del self.restart_at[name]
                self.restarts[name] += 1
                new = self._start(name)
                self.stack.note(name, f"restarted {name} as pid {new.pid} (restart {self.restarts[name]})")

    def _start(self, name: str) -> subprocess.Popen:
        self.started_at[name] = time.monotonic()
        return self.stack.start_one(name)

    def _stop(self, signum: int, frame: object) -> None:
        self.stopping = True


def http_get(url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, ""


def create_database(url: str) -> None:
    """Create the database named in `url` if it does not exist."""
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin_url = parsed._replace(path="/postgres").geturl().replace("postgres://", "postgresql://", 1)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")


def run_checked(args: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"failed: {' '.join(args)}")
    return proc.stdout


def stack_env(var: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", DEFAULT_DB_URL)
    env.setdefault("REDIS_URL", DEFAULT_REDIS_URL)
    env.setdefault("DEBUG", "true")
    env.setdefault("LOG_FORMAT", "text")
    env.setdefault("FLEETWATCH_AGENT_STATE_DIR", str(var / "agent"))
    env.setdefault("FLEETWATCH_AGENT_SOCKET", str(var / "agent.sock"))
    return env


def up(var: Path, port: int) -> int:
    env = stack_env(var)
    if any(_alive(var, n) for n in ("supervisor", *PROCESSES)):
        print("the stack is already running (fleetwatch-local down to stop it)")
        return 1
    create_database(env["DATABASE_URL"])
    print(run_checked([sys.executable, "-m", "collector_server", "migrate"], env).strip())
    credentials = var / "admin.json"
    if not credentials.exists():
        out = run_checked(
            [sys.executable, "-m", "collector_server", "manage", "bootstrap_admin", "--new-token"], env
        )
        fields = dict(line.split(": ", 1) for line in out.strip().splitlines() if ": " in line)
        var.mkdir(parents=True, exist_ok=True)
        write_private(credentials, json.dumps(fields))
    fields = json.loads(credentials.read_text())
    from collector_server import local_agent

    local_agent.enroll(env)  # batches are signed: FLEETWATCH_REQUIRE_SIGNED_BATCHES defaults to true
    fallback = env.get("STREAM_REDIS_URL") or env["REDIS_URL"]
    env["FLEETWATCH_AGENT_REDIS_URL"] = local_agent.create_redis_user(env, var) or fallback
    supervisor = start_supervisor(var, env, port)
    status = wait_for_health(port, supervisor)
    base = f"http://127.0.0.1:{port}"
    print(f"\nfleetwatch is running (logs in {var / 'log'}); health answered {status}")
    print(f"  dashboard:  {base}/")
    print(
        f"  admin:      {base}/admin/  user {fields.get('admin user')}  password "
        f"{fields.get('admin password', '(unchanged)')}"
    )
    print(f"  API token:  {fields.get('api token')}")
    print(
        f"  try:        curl -H 'Authorization: Token {fields.get('api token')}' "
        f"'{base}/api/v1/monitoring/metrics/system?minutes=5'"
    )
    print(f"  API docs:   {base}/api/docs/")
    print("  stop with:  make down")
    return 0


def start_supervisor(var: Path, env: dict[str, str], port: int) -> subprocess.Popen:
    """Start `fleetwatch-local supervise` in the background; it starts and restarts the processes."""
    (var / "log").mkdir(parents=True, exist_ok=True)
    (var / "run").mkdir(parents=True, exist_ok=True)
    with open(var / "log" / "supervisor.log", "ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "collector_server.localstack",
                "supervise",
                "--var",
                str(var),
                "--port",
                str(port),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (var / "run" / "supervisor.pid").write_text(str(proc.pid))
    return proc


def wait_for_health(port: int, supervisor: subprocess.Popen, timeout: float = 90.0) -> int:
    deadline = time.time() + timeout
    status = 0
    while time.time() < deadline and supervisor.poll() is None:
        status, _ = http_get(f"http://127.0.0.1:{port}/api/v1/monitoring/health")
        if status in (200, 503):
            break
        time.sleep(0.5)
    return status


def supervise(var: Path, port: int, names: tuple[str, ...] = PROCESSES) -> int:
    stack = Stack(var=var, env=stack_env(var), port=port)
    Supervisor(stack, names).run()
    return 0


def write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only: created 0600 (never chmod'ed after), then renamed in place.

    No other user ever sees the content, not even for a moment, and a reader never sees half a file.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _alive(var: Path, name: str) -> bool:
    pid_file = var / "run" / f"{name}.pid"
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text()), 0)
        return True
    except (OSError, ValueError):
        return False


def down(var: Path) -> int:
    supervisor_pid = var / "run" / "supervisor.pid"
    if _alive(var, "supervisor"):
        pid = int(supervisor_pid.read_text())
        os.kill(pid, signal.SIGTERM)  # it stops its processes before it exits
        deadline = time.time() + 20
        while _alive(var, "supervisor") and time.time() < deadline:
            time.sleep(0.2)
        print("stopped supervisor")
    supervisor_pid.unlink(missing_ok=True)
    for name in PROCESSES:
        pid_file = var / "run" / f"{name}.pid"
        if _alive(var, name):
            os.killpg(int(pid_file.read_text()), signal.SIGTERM)
            print(f"stopped {name}")
        pid_file.unlink(missing_ok=True)
    return 0


def status(var: Path) -> int:
    for name in ("supervisor", *PROCESSES):
        print(f"{name:10} {'running' if _alive(var, name) else 'stopped'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fleetwatch-local", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["up", "down", "status", "supervise"])
    parser.add_argument("--var", default=str(ROOT / "var"), help="folder for logs, pids, agent state")
    parser.add_argument("--port", type=int, default=int(os.environ.get("FLEETWATCH_PORT", "8000")))
    parser.add_argument(
        "--processes", default=",".join(PROCESSES), help="supervise: the processes to run (comma-separated)"
    )
    args = parser.parse_args(argv)
    var = Path(args.var)
    if args.action == "supervise":
        names = tuple(n for n in args.processes.split(",") if n in PROCESSES)
        return supervise(var, args.port, names)
    if args.action == "up":
        return up(var, args.port)
    return down(var) if args.action == "down" else status(var)


if __name__ == "__main__":
    sys.exit(main())
