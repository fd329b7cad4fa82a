"""Recovery from dependency outages: a real scheduler and worker, Redis and then Postgres stopped and restarted.

    .venv/bin/python bench/outages.py [--redis-seconds 15] [--postgres-seconds 60] [--batches 50]
                                      [--only redis|postgres] [--claim-idle-ms N]

Runs its own redis-server (append-only file) and its own Postgres cluster (initdb as the
postgres OS user, migrated), both on free ports in a temporary folder: the machine's
servers are never touched. Prints, for each outage:

  redis:    seconds from Redis answering again to the first batch pushed after the restart
            being stored (ingest resumed), and to every batch (those in the stream when Redis
            stopped and those pushed after) being stored; whether both processes still run.
  postgres: seconds from Postgres accepting connections again to the backlog (the batches
            pushed during the outage) being stored.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.wire import encode_batch, series_dict  # noqa: E402
from tests.ingest.own_servers import (  # noqa: E402
    OwnPostgres,
    OwnRedis,
    log_text,
    process,
    stop_processes,
    wait_until,
)

SAMPLES_PER_BATCH = 2
SAMPLES = "SELECT count(*) FROM monitoring_sample"


MARKER = "bench_after_restart"
MARKER_SAMPLES = (
    "SELECT count(*) FROM monitoring_sample WHERE series_id IN "
    f"(SELECT id FROM monitoring_series WHERE name = '{MARKER}')"
)


def batch(seq: int, second: str = "system_load1") -> bytes:
    now = time.time()
    return encode_batch(
        kind="metrics", agent_id="bench-agent", host="bench-host", agent_version="bench", epoch=1, seq=seq,
        sent_at=now,
        series=[series_dict("system_cpu_usage_percent", [[now, 1.0]]), series_dict(second, [[now, 0.5]])],
    )  # fmt: skip


class Rig:
    def __init__(self, folder: Path, claim_idle_ms: int | None = None) -> None:
        self.folder = folder
        self.redis = OwnRedis(folder).start()
        self.postgres = OwnPostgres().init()
        self.postgres.start()
        self.postgres.create_database()
        self.prefix = f"fwbench-{uuid.uuid4().hex[:6]}"
        self.seq = 0
        self.env = dict(
            os.environ, DATABASE_URL=self.postgres.url, REDIS_URL=self.redis.url, SECRET_KEY="bench",
            LOG_FORMAT="text", FLEETWATCH_STREAM_PREFIX=self.prefix, RECONNECT_MAX_SECONDS="1",
            INGEST_JOB_SECONDS="5",
        )  # fmt: skip
        if claim_idle_ms:
            self.env["INGEST_CLAIM_IDLE_MS"] = str(claim_idle_ms)
        import subprocess

        migrate = subprocess.run(
            [sys.executable, "-m", "collector_server", "migrate"],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
        )
        if migrate.returncode:
            raise SystemExit(migrate.stdout + migrate.stderr)
        self.logs = {name: folder / f"{name}.log" for name in ("scheduler", "worker")}
        self.procs = {name: process([name], self.env, self.logs[name], str(ROOT)) for name in self.logs}

    def push(self, count: int, second: str = "system_load1") -> None:
        client = self.redis.client()
        for _ in range(count):
            self.seq += 1
            client.xadd(f"{self.prefix}:stream:metrics", {"b": batch(self.seq, second)})

    def stored(self) -> int:
        return self.postgres.query(SAMPLES)

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs.values())

    def close(self) -> None:
        stop_processes(*self.procs.values())
        self.redis.stop()
        self.postgres.remove()


def redis_outage(rig: Rig, seconds: float, batches: int) -> None:
    rig.push(batches)
    wait_until(lambda: rig.stored() == rig.seq * SAMPLES_PER_BATCH, 120, "the warm-up batches")
    rig.push(batches)  # in the stream when Redis stops
    rig.redis.stop()
    time.sleep(seconds)
    rig.redis.start()
    back = time.monotonic()
    rig.push(1, second=MARKER)  # the first batch after the restart
    wait_until(lambda: rig.postgres.query(MARKER_SAMPLES) == 1, 300, "ingest to resume", interval=0.1)
    resumed = time.monotonic() - back
    wait_until(lambda: rig.stored() == rig.seq * SAMPLES_PER_BATCH, 300, "every batch", interval=0.1)
    drained = time.monotonic() - back
    print(
        f"redis outage {seconds:.0f}s: ingest resumed {resumed:.1f}s after Redis returned; "
        f"all {rig.seq} batches stored {drained:.1f}s after; scheduler and worker running: {rig.alive()}"
    )


def postgres_outage(rig: Rig, seconds: float, batches: int) -> None:
    rig.push(batches)
    wait_until(lambda: rig.stored() == rig.seq * SAMPLES_PER_BATCH, 120, "the warm-up batches")
    rig.postgres.stop()
    rig.push(batches)  # the backlog: arrives while Postgres is down
    time.sleep(seconds)
    rig.postgres.start()
    back = time.monotonic()
    wait_until(lambda: rig.stored() == rig.seq * SAMPLES_PER_BATCH, 300, "the backlog", interval=0.1)
    print(
        f"postgres outage {seconds:.0f}s: backlog of {batches} batches stored {time.monotonic() - back:.1f}s "
        f"after Postgres returned; scheduler and worker running: {rig.alive()}; "
        f"outage logged {log_text(rig.logs['worker']).count('Postgres is unreachable')} time(s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis-seconds", type=float, default=15)
    parser.add_argument("--postgres-seconds", type=float, default=60)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--only", choices=["redis", "postgres"])
    parser.add_argument(
        "--claim-idle-ms",
        type=int,
        help="INGEST_CLAIM_IDLE_MS for the worker (default: the setting's default)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fw-outage-") as folder:
        rig = Rig(Path(folder), args.claim_idle_ms)
        try:
            if args.only in (None, "redis"):
                redis_outage(rig, args.redis_seconds, args.batches)
            if args.only in (None, "postgres"):
                postgres_outage(rig, args.postgres_seconds, args.batches)
        finally:
            rig.close()


if __name__ == "__main__":
    main()
