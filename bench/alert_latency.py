"""Alert latency: from the XADD of a breaching sample to the webhook receiving the notification.

Setup (own database ``fleetwatch_bench_alerting``, Redis db 3 with its own prefix):
500 hosts, 5,500 series with samples around now, 1,000 enabled rules (999 background rules
grouped by host over 120 distinct queries that never breach, plus one target rule with
``for: 0`` routed to a webhook channel with ``group_wait: 0``).

Pipeline measured, all real: the metrics stream is drained by the ingest code
(``alerting_worker.ingest.jobs.drain``) in a thread, rules are evaluated back to back in
another thread (``evaluate_and_dispatch``), notifications are delivered by a separate
``fleetwatch-worker --queues notifications`` process to a local HTTP receiver.

Prints the median and p95 of sample→notification latency and of one evaluation cycle.
Usage: .venv/bin/python bench/alert_latency.py [--trials 20] [--seconds 90]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "fleetwatch_bench_alerting"
PREFIX = "fwbench-alerting"
HOSTS = 500
METRICS = 10
RULES = 1000
AGGREGATIONS = ["avg", "max", "min", "p95"]
WINDOWS = [60, 120, 300]

os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{DB_NAME}")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/3")
os.environ["FLEETWATCH_STREAM_PREFIX"] = PREFIX
os.environ.setdefault("FLEETWATCH_ALLOW_INSECURE_KEY", "true")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("ALLOWED_HOSTS", "localhost")
os.environ.setdefault("SECRET_KEY", "bench-alerting")
os.environ.setdefault("FLEETWATCH_ALLOWED_TARGETS", "127.0.0.1")  # the local webhook receiver
os.environ.setdefault("FLEETWATCH_ALLOW_VOLATILE_REDIS", "true")
os.environ.setdefault("FLEETWATCH_REQUIRE_SIGNED_BATCHES", "false")  # the bench XADDs unsigned breaches
os.environ.setdefault("INGEST_BLOCK_MS", "100")
sys.path.insert(0, str(ROOT))


def create_database() -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone():
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class Receiver:
    """A local webhook receiver noting when each host's firing alert first arrives."""

    def __init__(self) -> None:
        self.first_seen: dict[str, float] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                at = time.time()
                for alert in body["alerts"]:
                    if alert["status"] == "firing":
                        outer.first_seen.setdefault(alert["labels"].get("host", ""), at)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def setup_data(receiver_url: str) -> None:
    from django.core.management import call_command
    from django.db import connection

    from collector_server.alerts.models import AlertRule, Channel
    from collector_server.monitoring import partitions
    from collector_server.orgs.scope import default_organization_id

    call_command("migrate", verbosity=0)
    partitions.ensure_ahead(days_ahead=1)
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE alerts_deliveryattempt, alerts_notification, alerts_notificationgroup, alerts_alertevent, "
            "alerts_alert, alerts_alertrule_channels, alerts_channel, monitoring_sample, monitoring_series, "
            "monitoring_host, monitoring_ingestedbatch CASCADE"
        )
        cursor.execute(
            "INSERT INTO monitoring_host (agent_id, hostname, labels, agent_version, first_seen, last_seen) "
            "SELECT 'bench-' || i, 'bench-' || i, '{}', 'bench', now(), now() FROM generate_series(0, %s) i",
            [HOSTS - 1],
        )
        names = [f"bench_m{m}" for m in range(METRICS)] + ["bench_target"]
        cursor.execute(
            "INSERT INTO monitoring_series (name, kind, labels, labels_key, host_id, created_at) "
            "SELECT n, 'gauge', jsonb_build_object('host', h.hostname), 'host=' || h.hostname, h.id, now() "
            "FROM unnest(%s::text[]) n CROSS JOIN monitoring_host h",
            [names],
        )
        # Samples every 10 s from 2 minutes ago to 4 minutes ahead; the target metric stays healthy (10).
        cursor.execute(
            "INSERT INTO monitoring_sample (series_id, ts, value) "
            "SELECT s.id, date_trunc('second', now()) + make_interval(secs => t), "
            "CASE WHEN s.name = 'bench_target' THEN 10 ELSE random() * 100 END "
            "FROM monitoring_series s CROSS JOIN generate_series(-120, 240, 10) t"
        )
    AlertRule.objects.all().delete()
    channel = Channel(
        name="bench webhook",
        kind="webhook",
        config={"url": receiver_url},
        group_by=["alertname", "host"],
        group_wait_seconds=0,
        rate_limit_per_hour=0,
    )
    channel.full_clean()
    channel.save()
    rules = []
    org_id = default_organization_id()  # bulk_create skips the save-time filling of the organisation
    for i in range(RULES - 1):
        query = {
            "metric": f"bench_m{i % METRICS}",
            "aggregation": AGGREGATIONS[(i // METRICS) % len(AGGREGATIONS)],
            "window": WINDOWS[(i // (METRICS * len(AGGREGATIONS))) % len(WINDOWS)],
            "group_by": ["host"],
        }
        rules.append(
            AlertRule(name=f"bench rule {i}", query=query, threshold=1000 + i, organization_id=org_id)
        )
    target = AlertRule(
        name="bench target",
        query={"metric": "bench_target", "aggregation": "max", "window": 60, "group_by": ["host"]},
        threshold=90,
        for_seconds=0,
    )
    for rule in [*rules, target]:
        rule.full_clean()
    AlertRule.objects.bulk_create(rules)
    target.save()
    target.channels.add(channel)


def ingest_loop(stop: threading.Event) -> None:
    from alerting_worker.ingest.jobs import drain
    from shared import streams

    while not stop.is_set():
        drain(streams.METRICS, max_seconds=1.0, stop_when_empty=False)


def evaluate_loop(stop: threading.Event, cycles: list[float], targeted: bool) -> None:
    from django.db import close_old_connections

    from alerting_worker.alerting.jobs import evaluate_and_dispatch, evaluate_metrics

    while not stop.is_set():
        started = time.perf_counter()
        if targeted:
            # Stands in for the ingest hook: evaluate only the rules on the metric just written.
            evaluate_metrics(["bench_target"])
        else:
            evaluate_and_dispatch()
        cycles.append(time.perf_counter() - started)
        close_old_connections()


def send_breach(host: str, seq: int) -> float:
    from collector_server.redis_conn import get_redis
    from shared import streams, wire

    now = time.time()
    batch = wire.encode_batch(
        kind="metrics",
        agent_id=host,
        host=host,
        agent_version="bench",
        epoch=1,
        seq=seq,
        sent_at=now,
        series=[wire.series_dict("bench_target", [[now, 99.0]])],
    )
    started = time.time()
    get_redis().xadd(streams.stream_key(streams.METRICS), {streams.PAYLOAD_FIELD: batch})
    return started


def main() -> int:
    global HOSTS, RULES
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--hosts", type=int, default=HOSTS, help="hosts, each with one series per metric")
    parser.add_argument("--rules", type=int, default=RULES, help="enabled rules (all but one never breach)")
    parser.add_argument(
        "--profile-cycle", action="store_true", help="only time full evaluation cycles (no pipeline) and exit"
    )
    parser.add_argument("--seconds", type=float, default=90.0, help="stop measuring after this long")
    parser.add_argument(
        "--targeted",
        action="store_true",
        help="evaluate only the rules on the written metric (the ingest fast path, evaluate_metrics)",
    )
    parser.add_argument(
        "--processes",
        action="store_true",
        help="the deployed path: real scheduler and worker processes; ingest itself queues the evaluation "
        "of the rules on the metrics it stored (alerting_worker.ingest.alert_trigger)",
    )
    args = parser.parse_args()
    HOSTS, RULES = args.hosts, args.rules
    create_database()
    from alerting_worker import django_setup

    django_setup.setup()
    from collector_server.redis_conn import get_redis

    get_redis().delete(*(get_redis().keys(f"{PREFIX}:*") or [b"-"]))
    get_redis().delete("rq:queue:notifications")
    receiver = Receiver()
    t0 = time.perf_counter()
    setup_data(receiver.url)
    print(
        f"setup: {HOSTS} hosts, {RULES} rules, {(METRICS + 1) * HOSTS} series in {time.perf_counter() - t0:.1f}s"
    )
    if args.profile_cycle:
        return profile_cycles()
    bin_dir = Path(sys.executable).parent
    stop = threading.Event()
    cycles: list[float] = []
    if args.processes:
        from alerting_worker.alerting.jobs import evaluate_and_dispatch

        for _ in range(3):  # the periodic full cycle the scheduler also runs, timed here
            started = time.perf_counter()
            evaluate_and_dispatch()
            cycles.append(time.perf_counter() - started)
        commands = [
            [str(bin_dir / "fleetwatch-scheduler")],
            [str(bin_dir / "fleetwatch-worker"), "--queues", "ingest"],
            [str(bin_dir / "fleetwatch-worker"), "--queues", "alerts,notifications"],
        ]
        threads = []
    else:
        commands = [[str(bin_dir / "fleetwatch-worker"), "--queues", "notifications"]]
        threads = [
            threading.Thread(target=ingest_loop, args=(stop,), daemon=True),
            threading.Thread(target=evaluate_loop, args=(stop, cycles, args.targeted), daemon=True),
        ]
    env = dict(os.environ, LOG_LEVEL="WARNING")
    workers = [subprocess.Popen(command, env=env, cwd=ROOT) for command in commands]
    for thread in threads:
        thread.start()
    latencies: list[float] = []
    missed = 0
    deadline = time.monotonic() + args.seconds
    try:
        time.sleep(8 if args.processes else 3)  # let the first cycles (and processes) warm up
        for trial in range(args.trials):
            if time.monotonic() > deadline:
                break
            host = f"bench-{trial}"
            sent = send_breach(host, seq=trial + 1)
            wait_until = time.monotonic() + 30
            while host not in receiver.first_seen and time.monotonic() < wait_until:
                time.sleep(0.005)
            if host in receiver.first_seen:
                latencies.append(receiver.first_seen[host] - sent)
            else:
                missed += 1
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()
    if args.processes:
        mode = (
            "processes (scheduler + ingest worker + alerts/notifications worker; ingest-triggered evaluation)"
        )
    elif args.targeted:
        mode = "targeted (rules on the written metric)"
    else:
        mode = f"full cycle (all {RULES:,} rules)"
    print("mode:", mode)
    report(latencies, cycles, missed)
    return 0


def profile_cycles(count: int = 5) -> int:
    """Time full evaluation cycles alone and print the median, with a profile of the last one."""
    import cProfile
    import pstats

    from alerting_worker.alerting.evaluate import evaluate_all

    cycles = []
    profiler = cProfile.Profile()
    for i in range(count):
        started = time.perf_counter()
        if i == count - 1:
            profiler.enable()
        stats = evaluate_all()
        if i == count - 1:
            profiler.disable()
        cycles.append(time.perf_counter() - started)
    print(
        f"{RULES:,} rules x {HOSTS:,} hosts: {stats.rules} rules, {stats.groups:,} groups, "
        f"{stats.distinct_queries} distinct queries"
    )
    print(f"full cycle median {statistics.median(cycles):.3f}s (of {count}; goal <= 5 s)")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(18)
    return 0


def report(latencies: list[float], cycles: list[float], missed: int) -> None:
    print(f"evaluation cycles: {len(cycles)}")
    if cycles:
        print(f"  cycle duration median {statistics.median(cycles):.3f}s  p95 {percentile(cycles, 95):.3f}s")
    print(f"sample -> notification: {len(latencies)} received, {missed} missed (30 s timeout)")
    if latencies:
        print(
            f"  latency median {statistics.median(latencies):.3f}s  p95 {percentile(latencies, 95):.3f}s  "
            f"max {max(latencies):.3f}s  (goal: p95 < 2 s)"
        )


if __name__ == "__main__":
    sys.exit(main())
