"""Recovery: the time from Postgres' return after an outage to the ingest backlog being drained.

Starts its own Postgres cluster (initdb + pg_ctl as the postgres user, in a temporary
directory, on a free port: the machine's shared Postgres is never touched), real worker
processes, and a loop that enqueues a drain job every second like the scheduler. A producer
adds RATE metrics batches a second throughout. After a warm-up, Postgres is stopped
(`pg_ctl stop -m fast`: the workers' connections are cut mid-chunk) for OUTAGE seconds and
started again; the bench prints how many entries waited, and how long after Postgres
answered again every batch was stored with nothing pending and nothing dead-lettered.

    .venv/bin/python bench/recovery.py [--outage 15] [--rate 100] [--workers 2]

Redis: the local server, database RECOVERY_REDIS_DB (default 1), emptied first.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PG_BIN = Path("/usr/lib/postgresql/15/bin")
REDIS_URL = f"redis://127.0.0.1:6379/{os.environ.get('RECOVERY_REDIS_DB', '1')}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    """A throwaway Postgres cluster run by the postgres OS user."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="fw-recovery-"))
        self.data = self.dir / "data"
        self.port = free_port()
        shutil.chown(self.dir, "postgres")
        self.run(PG_BIN / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def run(self, *args: object) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *map(str, args)], check=True, capture_output=True)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.run(PG_BIN / "pg_ctl", "-D", self.data, "-o", options, "-l", self.dir / "log", "-w", "start")

    def stop(self) -> None:
        self.run(PG_BIN / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def produce(client, key: str, rate: int, stop: threading.Event, sent: list[int]) -> None:
    from shared.wire import encode_batch, series_dict

    seq = 0
    while not stop.is_set():
        started = time.monotonic()
        now = time.time()
        for _ in range(max(1, rate // 10)):
            seq += 1
            series = [
                series_dict(f"rec_metric_{i}", [[now, float(seq)]], {"core": str(i)}) for i in range(10)
            ]
            batch = encode_batch(kind="metrics", agent_id=f"rec-{seq % 20}", host=f"rec-{seq % 20}",
                                 agent_version="1", epoch=1, seq=seq, sent_at=now, series=series)  # fmt: skip
            client.xadd(key, {b"b": batch})
        sent[0] = seq
        stop.wait(max(0.0, 0.1 - (time.monotonic() - started)))


def enqueue_drains(stop: threading.Event) -> None:
    """What the scheduler does for the metrics stream: one drain job a second."""
    import redis
    from rq import Queue

    queue = Queue("ingest", connection=redis.Redis.from_url(REDIS_URL))
    while not stop.wait(1.0):
        queue.enqueue(
            "alerting_worker.ingest.jobs.drain_metrics", job_timeout=600, result_ttl=0, failure_ttl=60
        )


def stored(port: int) -> int:
    import psycopg

    try:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/fleetwatch", connect_timeout=2) as conn:
            return conn.execute("SELECT count(*) FROM monitoring_ingestedbatch").fetchone()[0]
    except psycopg.OperationalError:
        return -1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--outage", type=float, default=15.0, help="seconds Postgres stays down")
    parser.add_argument("--rate", type=int, default=100, help="metrics batches a second (10 series each)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of storing before the outage")
    args = parser.parse_args()
    cluster = Cluster()
    procs: list[subprocess.Popen] = []
    stop = threading.Event()
    try:
        cluster.start()
        cluster.run(PG_BIN / "createdb", "-h", "127.0.0.1", "-p", cluster.port, "fleetwatch")
        os.environ.update(
            DATABASE_URL=f"postgres://postgres@127.0.0.1:{cluster.port}/fleetwatch",
            REDIS_URL=REDIS_URL,
            FLEETWATCH_STREAM_PREFIX="fwrecovery",
            SECRET_KEY="bench",
            DJANGO_SETTINGS_MODULE="collector_server.settings",
            LOG_LEVEL="CRITICAL",
            LOG_FORMAT="text",
        )
        import django
        import redis

        django.setup()
        from django.core.management import call_command
        from django.db import connections

        from alerting_worker.ingest.consumer import ensure_group
        from collector_server.monitoring import partitions
        from shared import streams

        call_command("migrate", verbosity=0)
        partitions.ensure_ahead(days_ahead=1)
        connections.close_all()
        client = redis.Redis.from_url(REDIS_URL)
        client.flushdb()
        key = streams.stream_key("metrics")
        ensure_group(client, key)
        procs = [
            subprocess.Popen([sys.executable, "-m", "alerting_worker", "worker", "--queues", "ingest"], cwd=ROOT,
                             env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(args.workers)
        ]  # fmt: skip
        sent = [0]
        threads = [
            threading.Thread(target=produce, args=(client, key, args.rate, stop, sent), daemon=True),
            threading.Thread(target=enqueue_drains, args=(stop,), daemon=True),
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while stored(cluster.port) <= 0 and time.monotonic() < deadline:  # the workers are up and storing
            time.sleep(0.2)
        time.sleep(args.warmup)
        print(f"warm-up: {stored(cluster.port):,} of {sent[0]:,} batches stored")
        cluster.stop()
        down_at = time.monotonic()
        time.sleep(args.outage)
        cluster.start()
        back = time.monotonic()
        group = client.xinfo_groups(key)[0]
        print(f"Postgres down {back - down_at:.1f} s; at its return {group['pending']:,} entries pending "
              f"(read before the outage began), {group['lag']:,} not yet read")  # fmt: skip
        before, first = stored(cluster.port), None
        while True:
            target = sent[0]
            if first is None and stored(cluster.port) > before:
                first = time.monotonic() - back
            group = client.xinfo_groups(key)[0]
            if stored(cluster.port) >= target and not group["pending"] and not group["lag"]:
                break
            if time.monotonic() - back > 120:
                print("backlog not drained within 120 s")
                break
            time.sleep(0.05)
        drained = time.monotonic() - back
        dead = client.xlen(streams.stream_key(streams.DEAD_LETTER))
        alive = sum(p.poll() is None for p in procs)
        print(f"first batch stored {first or 0:.1f} s after Postgres returned")
        print(f"backlog drained {drained:.1f} s after Postgres returned (producer still adding {args.rate}/s); "
              f"{stored(cluster.port):,} batches stored, {dead} dead-lettered, workers alive {alive} of {len(procs)}")  # fmt: skip
    finally:
        stop.set()
        for proc in procs:
            proc.send_signal(2)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        cluster.remove()


if __name__ == "__main__":
    main()
