"""Measure the monitoring API's read latency on a day of data from a small fleet.

    DEBUG=true .venv/bin/python bench/query_api.py [--hosts 10] [--hours 24] [--runs 5] [--keep]

Seeds a throwaway database (fleetwatch_bench_query, dropped and re-created) with the six
system series per host, one sample every 15 s, plus 1-minute rollups of them and a
RollupState, then times each endpoint through Django's test client (in process: the
full DRF stack without HTTP) and prints the median and max of `--runs` calls. The database
is dropped at the end unless --keep is given.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BENCH_DB = "fleetwatch_bench_query"
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "collector_server.settings")
os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}")

METRICS = [
    ("system_cpu_usage_percent", "gauge", {}),
    ("system_memory_usage_percent", "gauge", {}),
    ("system_disk_usage_percent", "gauge", {"mountpoint": "/"}),
    ("system_network_bytes_sent_total", "counter", {}),
    ("system_network_bytes_recv_total", "counter", {}),
    ("system_connections_active", "gauge", {}),
]


def recreate_database() -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")


def seed(hosts: int, hours: int) -> int:
    from django.contrib.auth.models import User
    from django.db import connection

    from collector_server.monitoring import partitions
    from collector_server.monitoring.models import Host, RollupState, Series

    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(hours=hours)
    day = start.date()
    while day <= now.date():
        for spec in partitions.REGISTRY.values():
            partitions.ensure_partition(spec, day)
        day += timedelta(days=1)
    User.objects.create_user("bench", password="bench-password-1")
    points = hours * 3600 // 15
    rows = 0
    for h in range(hosts):
        name = f"host-{h:03d}"
        host = Host.objects.create(agent_id=f"agent-{name}", hostname=name, last_seen=now)
        buffer = io.StringIO()
        for metric, kind, extra in METRICS:
            labels = {"host": name, **extra}
            key = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
            series = Series.objects.create(name=metric, kind=kind, labels=labels, labels_key=key, host=host)
            for k in range(points):
                ts = start + timedelta(seconds=15 * k)
                value = k * 1000.0 if kind == "counter" else 50 + 30 * math.sin(k / 50 + h)
                buffer.write(f"{series.id}\t{ts.isoformat()}\t{value}\n")
                rows += 1
        buffer.seek(0)
        with connection.cursor() as cursor, cursor.copy("COPY monitoring_sample FROM STDIN") as copy:
            copy.write(buffer.read())
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO monitoring_rollup_1m
            SELECT series_id, date_trunc('minute', ts), min(value), max(value), sum(value), count(*),
                   (array_agg(value ORDER BY ts DESC))[1], NULL FROM monitoring_sample GROUP BY 1, 2
            """
        )
        cursor.execute("ANALYZE")
    RollupState.objects.create(level="1m", done_until=now.replace(second=0) - timedelta(minutes=1))
    return rows


def timed(client, path: str, runs: int) -> tuple[float, float, int]:
    durations = []
    status = 0
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(path)
        durations.append((time.perf_counter() - started) * 1000)
        status = response.status_code
    return statistics.median(durations), max(durations), status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    args = parser.parse_args()
    recreate_database()
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    rows = seed(args.hosts, args.hours)
    print(
        f"seeded {rows} samples ({args.hosts} hosts x {args.hours} h) in {time.perf_counter() - started:.1f}s"
    )

    from django.contrib.auth.models import User
    from django.test import Client

    client = Client()
    client.force_login(User.objects.get(username="bench"))
    end = int(time.time())
    day, six_hours = end - 24 * 3600, end - 6 * 3600
    paths = [
        "/api/v1/monitoring/metrics/system?minutes=60&host=host-000",
        "/api/v1/monitoring/metrics/system?minutes=360&host=host-000",
        "/api/v1/monitoring/metrics/system?minutes=1440&host=host-000",
        "/api/v1/monitoring/metrics/summary?hours=24",
        "/api/v1/monitoring/dashboard/overview",
        "/api/v1/monitoring/hosts",
        f"/api/v1/monitoring/query?metric=system_cpu_usage_percent&start={day}&end={end}&step=5m&by=host",
        f"/api/v1/monitoring/query?metric=system_network_bytes_sent_total&agg=rate&start={six_hours}&step=1m",
        f"/api/v1/monitoring/query?metric=system_cpu_usage_percent&agg=p95&start={six_hours}&step=10m",
    ]
    print(f"{'median ms':>10} {'max ms':>8} status  endpoint")
    for path in paths:
        median, worst, status = timed(client, path, args.runs)
        print(f"{median:10.1f} {worst:8.1f} {status:6d}  {path.replace('/api/v1/monitoring/', '')}")
    if not args.keep:
        from django.db import connections

        connections.close_all()
        drop_database()


def drop_database() -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")


if __name__ == "__main__":
    main()
