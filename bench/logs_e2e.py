"""Logs end to end: SDK log calls in app processes to rows committed in Postgres.

The whole shipping path with real processes: APPS processes log RECORDS structured records
each through ``StructuredLogger`` + ``AgentHandler`` (redaction, datagrams on the agent's Unix
socket); one agent-side ``LogShipper`` process (the agent's own class: socket endpoint,
batching, msgpack, XADD to the logs stream); WORKERS real ``fleetwatch-worker`` processes
draining the logs stream into ``logs_entry``. It prints records per second from the first log
call to the last row committed, the apps' CPU per log call, and every count of dropped or
rejected records (datagrams the socket refused, records the shipper dropped, rows the worker
rejected), so that a fast figure cannot hide a loss.

    .venv/bin/python bench/logs_e2e.py [--apps 2] [--records 50000] [--rate 0] [--workers 2] [--repeat 3]

With --rate 0 the apps log as fast as they can, which on a small machine is faster than one
agent can read: the socket's excess is refused and counted (``dropped by the apps' socket``),
never blocking the app. --rate R paces each app at R records/s, to find the rate one agent
carries without loss.

It uses its own database (fleetwatch_bench_logs_e2e, dropped at the end) and Redis db 14.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchdb  # bench/ is the script directory, so it is on sys.path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "fleetwatch_bench_logs_e2e"
REDIS_URL = "redis://127.0.0.1:6379/14"
os.environ.update(
    DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}",
    REDIS_URL=REDIS_URL,
    FLEETWATCH_STREAM_PREFIX="fwbenchlogs",
    SECRET_KEY="bench",
    DJANGO_SETTINGS_MODULE="collector_server.settings",
    LOG_LEVEL="WARNING",
    INGEST_BLOCK_MS="500",
)

SHIPPER = """
import json, os, signal, sys, threading
import redis
from agent.logs import AgentInfo, LogShipConfig, LogShipper
from shared.streams import stream_key

client = redis.Redis.from_url(os.environ["REDIS_URL"])
config = LogShipConfig.from_dict(
    {"socket_path": sys.argv[1], "flush_interval": 0.2, "poll_interval": 0.5, "max_buffer_records": 200000},
    sys.argv[2],
)
def sender(kind):
    key = stream_key(kind)
    return lambda data: client.xadd(key, {"b": data})
ship = LogShipper(config, AgentInfo("bench-agent", "bench-host", "bench"), send_logs=sender("logs"),
                  send_metrics=sender("metrics"))
ship.start()
print("ready", flush=True)
done = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: done.set())
done.wait()
ship.stop()
print(json.dumps(ship.stats(), default=str), flush=True)
"""

APP = """
import json, logging, sys, time
from agent.sdk import AgentClient, AgentHandler, StructuredLogger
count = int(sys.argv[2])
rate = float(sys.argv[3])  # records per second this app aims at; 0: as fast as it can
client = AgentClient(sys.argv[1])
root = logging.getLogger()
root.setLevel(logging.INFO)
root.addHandler(AgentHandler("bench-app", client=client))
log = StructuredLogger("bench.app")
log.set_context(tenant="acme")
paths = ["/api/v1/items/%d" % i for i in range(50)]
cpu0 = time.process_time()
start = time.monotonic()
for i in range(count):
    log.info("request served", path=paths[i % 50], status=200, duration_ms=12.5, user_id=i % 997)
    if i % 100 == 99:
        ahead = (i + 1) / rate - (time.monotonic() - start) if rate else 0.0005
        if ahead > 0:
            time.sleep(ahead)  # an app does other work between log calls
cpu = time.process_time() - cpu0
print(json.dumps({**client.stats(), "cpu_per_call_us": cpu / count * 1e6}), flush=True)
"""


def setup() -> None:
    benchdb.create(BENCH_DB)


def teardown() -> None:
    benchdb.drop(BENCH_DB)


def start_workers(workers: int) -> list[subprocess.Popen]:
    import redis

    from alerting_worker import jobs_guard
    from alerting_worker.ingest.consumer import ensure_group
    from shared import streams

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    ensure_group(client, streams.stream_key("logs"))
    queue = jobs_guard.get_queue("ingest", client)
    for _ in range(workers):
        queue.enqueue("alerting_worker.ingest.jobs.drain", "logs", 3600.0, False, job_timeout=4000)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "alerting_worker", "worker", "--queues", "ingest", "--burst"],
            cwd=ROOT,
            env=dict(os.environ, INGEST_JOB_SECONDS="3600"),
        )
        for _ in range(workers)
    ]
    time.sleep(3)
    return procs


def run_once(apps: int, records: int, rate: float, workers: list[subprocess.Popen]) -> dict[str, float]:
    import redis

    from shared import streams

    client = redis.Redis.from_url(REDIS_URL)
    stats_key = streams.stats_key()
    before = {k.decode(): int(v) for k, v in client.hgetall(stats_key).items()}
    workdir = tempfile.mkdtemp(prefix="fw-e2e-", dir="/tmp")
    socket_path = os.path.join(workdir, "agent.sock")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    shipper = subprocess.Popen(
        [sys.executable, "-c", SHIPPER, socket_path, os.path.join(workdir, "state")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert shipper.stdout is not None and shipper.stdout.readline().strip() == "ready"
        t0 = time.perf_counter()
        senders = [
            subprocess.Popen(
                [sys.executable, "-c", APP, socket_path, str(records), str(rate)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(apps)
        ]
        app_stats = [json.loads(p.communicate()[0]) for p in senders]
        t_sent = time.perf_counter() - t0
        sent = sum(s["sent"] for s in app_stats)

        def counter(name: str) -> int:
            return int(client.hget(stats_key, name) or 0) - before.get(name, 0)

        deadline = time.monotonic() + 300
        while counter("logs_ingested") + counter("logs_rejected") < sent and time.monotonic() < deadline:
            if all(w.poll() is not None for w in workers):
                raise SystemExit("the workers exited before storing every record")
            time.sleep(0.02)
        seconds = time.perf_counter() - t0
        shipper.terminate()
        ship_stats = json.loads(shipper.communicate(timeout=30)[0].strip().splitlines()[-1])
    finally:
        if shipper.poll() is None:
            shipper.kill()
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "records_per_s": counter("logs_ingested") / seconds,
        "seconds": seconds,
        "send_seconds": t_sent,
        "sent": sent,
        "app_dropped": sum(s["dropped"] for s in app_stats),
        "stored": counter("logs_ingested"),
        "rejected": counter("logs_rejected"),
        "cpu_per_call_us": statistics.median(s["cpu_per_call_us"] for s in app_stats),
        "shipper": ship_stats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--apps", type=int, default=2, help="app processes logging at once")
    parser.add_argument("--records", type=int, default=50_000, help="records per app process per run")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="records/s each app aims at (default: as fast as it can)"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    setup()
    workers = start_workers(args.workers)
    try:
        runs = []
        for i in range(args.repeat):
            result = run_once(args.apps, args.records, args.rate, workers)
            runs.append(result)
            print(
                f"run {i + 1}: {result['records_per_s']:8.0f} records/s end to end "
                f"({result['stored']} stored in {result['seconds']:.2f} s; apps done in "
                f"{result['send_seconds']:.2f} s); app CPU {result['cpu_per_call_us']:.0f} us per log call; "
                f"dropped by the apps' socket {result['app_dropped']}, rejected by the worker "
                f"{result['rejected']}; shipper {json.dumps(result['shipper'])}"
            )
        rates = [r["records_per_s"] for r in runs]
        print(
            f"\n{args.apps} app processes x {args.records} records (rate {args.rate or 'max'}), "
            f"{args.workers} workers: "
            f"median {statistics.median(rates):.0f} records/s (min {min(rates):.0f}, max {max(rates):.0f}); "
            f"app CPU per log call median {statistics.median(r['cpu_per_call_us'] for r in runs):.0f} us"
        )
    finally:
        for w in workers:
            w.kill()  # each runs one long drain job; a warm shutdown would wait for it
        for w in workers:
            w.wait(timeout=30)
        teardown()


if __name__ == "__main__":
    main()
