"""DATABASE_REPLICA_URL: the API's reads on a real streaming replica, writes on the primary.

The test starts its own primary (wal_level=replica) and a replica made by pg_basebackup, runs
the migrations on the primary and serves the app with gunicorn. Pausing the replica's replay
shows which server answered a read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.ingest.redis_cluster import free_ports, wait_until
from tests.server.pg_replica import PrimaryAndReplica

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def databases():
    pg = PrimaryAndReplica().start()
    env = dict(os.environ, DATABASE_URL=pg.primary_url, SECRET_KEY="replica-test", LOG_FORMAT="text")
    manage = [sys.executable, str(REPO / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput"], env=env, cwd=REPO, check=True, capture_output=True,
                   timeout=600)  # fmt: skip
    tokens = []
    for name in ("alice", "bob"):
        out = subprocess.run([*manage, "bootstrap_admin", "--username", name, "--password", "pw-" + name * 4],
                             env=env, cwd=REPO, check=True, capture_output=True, text=True, timeout=120)  # fmt: skip
        tokens.append(
            next(line.split(": ", 1)[1] for line in out.stdout.splitlines() if line.startswith("api token:"))
        )
    wait_until(pg.caught_up, 30, "the replica to replay the migrations")
    yield pg, tokens
    pg.remove()


class Server:
    """gunicorn serving the app with the primary and the replica."""

    def __init__(self, pg: PrimaryAndReplica, redis_url: str, max_lag: str, folder: Path) -> None:
        self.port = free_ports(1, {pg.primary_port, pg.replica_port})[0]
        env = dict(
            os.environ,
            DATABASE_URL=pg.primary_url,
            DATABASE_REPLICA_URL=pg.replica_url,
            HEALTH_MAX_REPLICA_LAG_SECONDS=max_lag,
            DATABASE_REPLICA_STICKY_SECONDS="300",
            REDIS_URL=redis_url,
            SECRET_KEY="replica-test",
            LOG_FORMAT="text",
            PYTHONPATH=str(REPO),
        )
        self.log = open(folder / f"gunicorn-{self.port}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{self.port}", "--workers", "1", "collector_server.wsgi"],
            env=env, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_until(lambda: self.call("GET", "/health")[0] == 200, 60, "gunicorn to answer")

    def call(self, method: str, path: str, token: str = "", body: dict | None = None, cookie: str = ""):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Token {token}"
        if cookie:
            headers["Cookie"] = cookie
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                return response.status, json.loads(response.read() or b"null"), dict(response.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null"), dict(exc.headers)
        except urllib.error.URLError:
            return 0, None, {}

    def token_names(self, token: str, cookie: str = "") -> set[str]:
        status, body, _ = self.call("GET", "/api/v1/tokens/", token, cookie=cookie)
        assert status == 200, body
        return {item["name"] for item in body["results"]}

    def replica_check(self) -> dict:
        status, body, _ = self.call("GET", "/api/v1/monitoring/health?scope=server")
        assert status in (200, 503), body
        return body["services"]["replica"] | {"status": body["status"]}

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)
        self.log.close()


def test_reads_on_the_replica_own_writes_on_the_primary_and_fallback(
    databases, redis_client, redis_url, tmp_path
):
    pg, (alice, bob) = databases
    server = Server(pg, redis_url, "3600", tmp_path)
    try:
        healthy = server.replica_check()
        assert healthy["reachable"] and healthy["reads_on"] == "replica" and healthy["status"] == "healthy"
        pg.pause_replay()
        status, created, headers = server.call(
            "POST", "/api/v1/tokens/", alice, {"name": "written-while-paused"}
        )
        assert status == 201, created
        assert "fleetwatch_read_primary=1" in headers.get("Set-Cookie", "")
        wait_until(lambda: server.replica_check()["lag_bytes"] > 0, 10, "the replica to report its lag")
        # Bob wrote nothing: his read comes from the replica, which has not replayed the write.
        assert "written-while-paused" not in server.token_names(bob)
        # Alice wrote: her reads stay on the primary (by her token, and by the cookie for a browser).
        assert "written-while-paused" in server.token_names(alice)
        assert "written-while-paused" in server.token_names(bob, cookie="fleetwatch_read_primary=1")
        # Raw-SQL reads (charts, queries, log search, autocomplete) go to the replica too.
        scans = "SELECT coalesce(sum(coalesce(seq_scan, 0) + coalesce(idx_scan, 0)), 0) FROM pg_stat_user_tables WHERE relname = 'monitoring_series'"
        before = pg.replica_sql(scans)
        assert server.call("GET", "/ui/api/metric-names?prefix=cpu", bob)[0] == 200
        wait_until(lambda: pg.replica_sql(scans) > before, 20, "the replica to count the raw-SQL read")
        lagging = server.replica_check()
        assert lagging["replay_paused"] and lagging["lag_seconds"] > 0 and lagging["status"] == "healthy"
        request = urllib.request.Request(f"http://127.0.0.1:{server.port}/metrics")
        with urllib.request.urlopen(request, timeout=20) as response:
            exposition = response.read().decode()
        assert 'fleetwatch_up{component="replica"} 1' in exposition
        assert "fleetwatch_replica_lag_bytes " in exposition

        pg.stop_replica()  # down: reads fall back to the primary, the health endpoint says so
        wait_until(lambda: not server.replica_check()["reachable"], 15, "the replica reported down")
        down = server.replica_check()
        assert down["status"] == "degraded" and down["reads_on"] == "default" and down["degraded"]
        assert "written-while-paused" in server.token_names(bob)
    finally:
        server.stop()
        if not (pg.replica_data / "postmaster.pid").exists():
            pg.start_replica()  # replay resumes after a restart
        pg.resume_replay()
    wait_until(pg.caught_up, 30, "the replica to catch up")

    server = Server(pg, redis_url, "0.5", tmp_path)  # a tight lag limit
    try:
        wait_until(lambda: server.replica_check()["reads_on"] == "replica", 15, "reads on the replica")
        pg.pause_replay()
        assert server.call("POST", "/api/v1/tokens/", alice, {"name": "behind-the-limit"})[0] == 201
        wait_until(lambda: server.replica_check()["status"] == "degraded", 15, "lag over the limit reported")
        over = server.replica_check()
        assert over["lag_seconds"] > 0.5 and "HEALTH_MAX_REPLICA_LAG_SECONDS" in over["warning"]
        assert "behind-the-limit" in server.token_names(bob)  # the lagging replica is not read
        pg.resume_replay()
        wait_until(lambda: server.replica_check()["status"] == "healthy", 15, "the replica caught up")
    finally:
        server.stop()
