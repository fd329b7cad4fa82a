"""A private Postgres primary (wal_level=replica) and a streaming replica made with pg_basebackup.

Both run as the postgres OS user in a temp dir, on ports of FLEETWATCH_TEST_PORTS (the shared
server on 5432 is never touched). ``pause_replay``/``resume_replay`` hold the replica back so a
test can see which server answered.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

from tests.ingest.redis_cluster import free_ports, wait_until

PG_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]


class PrimaryAndReplica:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="fw-replica-"))
        shutil.chown(self.root, "postgres", "postgres")
        self.primary_port, self.replica_port = free_ports(2)
        self.primary_data, self.replica_data = self.root / "primary", self.root / "replica"

    def url(self, port: int) -> str:
        return f"postgres://postgres@127.0.0.1:{port}/fleetwatch"

    @property
    def primary_url(self) -> str:
        return self.url(self.primary_port)

    @property
    def replica_url(self) -> str:
        return self.url(self.replica_port)

    def _run(self, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True,
                       cwd=self.root, timeout=180)  # fmt: skip

    def _pg_ctl(self, data: Path, port: int, action: str) -> None:
        options = f"-p {port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = data.with_suffix(".log")
        try:
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-w",
                      *(("-o", options) if action == "start" else ("-m", "fast")), action)  # fmt: skip
        except subprocess.CalledProcessError as exc:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise AssertionError(f"pg_ctl {action} {data.name} failed: {exc.stderr!r}\n{tail}") from None

    def start(self) -> PrimaryAndReplica:
        self._run(str(PG_BIN / "initdb"), "-D", str(self.primary_data), "-A", "trust", "-U", "postgres")
        with open(self.primary_data / "postgresql.conf", "a") as conf:
            conf.write("wal_level = replica\nmax_wal_senders = 4\nhot_standby = on\n")
        with open(self.primary_data / "pg_hba.conf", "a") as hba:
            hba.write("host replication postgres 127.0.0.1/32 trust\n")
        self._pg_ctl(self.primary_data, self.primary_port, "start")
        with psycopg.connect(
            self.url(self.primary_port).replace("/fleetwatch", "/postgres"), autocommit=True
        ) as c:
            c.execute("CREATE DATABASE fleetwatch")
        self._run(str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.primary_port), "-U",
                  "postgres", "-D", str(self.replica_data), "-R", "-X", "stream")  # fmt: skip
        self.start_replica()
        return self

    def start_replica(self) -> None:
        self._pg_ctl(self.replica_data, self.replica_port, "start")
        wait_until(
            lambda: self.replica_sql("SELECT pg_is_in_recovery()") is True, 30, "the replica in recovery"
        )

    def stop_replica(self) -> None:
        self._pg_ctl(self.replica_data, self.replica_port, "stop")

    def primary_sql(self, sql: str, *params):
        with psycopg.connect(self.primary_url, autocommit=True) as conn:
            row = conn.execute(sql, params).fetchone()
            return row[0] if row else None

    def replica_sql(self, sql: str, *params):
        try:
            with psycopg.connect(self.replica_url, autocommit=True, connect_timeout=3) as conn:
                row = conn.execute(sql, params).fetchone()
                return row[0] if row else None
        except psycopg.OperationalError:
            return None

    def caught_up(self) -> bool:
        lsn = self.primary_sql("SELECT pg_current_wal_lsn()::text")
        return bool(self.replica_sql("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", lsn))

    def pause_replay(self) -> None:
        self.replica_sql("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        self.replica_sql("SELECT pg_wal_replay_resume()")

    def remove(self) -> None:
        for data, port in ((self.replica_data, self.replica_port), (self.primary_data, self.primary_port)):
            if (data / "postmaster.pid").exists():
                with contextlib.suppress(subprocess.CalledProcessError):
                    self._pg_ctl(data, port, "stop")
        shutil.rmtree(self.root, ignore_errors=True)
