"""Measure the monitoring API's read latency on a day of data from a small fleet.

    DEBUG=true .venv/bin/python bench/query_api.py [--hosts 10] [--hours 24] [--runs 20] [--keep] [--reuse]

Seeds a throwaway database (fleetwatch_bench_query, dropped and re-created) with the six
system series per host, one sample every 15 s, plus the 1-minute and 1-hour rollups the
periodic rollup job would have written (its own SQL, one day at a time; the 5-minute level
only where the code has it) and their
RollupState, then times each endpoint through Django's test client (in process: the full
DRF stack without HTTP) as a member of the organisation, and prints the median, p95 and max
of `--runs` calls. The database is dropped at the end unless --keep is given; --reuse times
an already seeded (kept) database, so two versions of the code can be compared on the same data.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# QUERY_BENCH_DB: another database name, so two checkouts (or engineers) do not share one.
BENCH_DB = os.environ.get("QUERY_BENCH_DB", "fleetwatch_bench_query")
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
    from collector_server.monitoring.models import Host, Series

    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(hours=hours)
    day = start.date()
    while day <= now.date():
        for spec in partitions.REGISTRY.values():
            partitions.ensure_partition(spec, day)
        day += timedelta(days=1)
    from tests.members import member

    member(User.objects.create_user("bench", password="bench-password-1"), "viewer")
    points = hours * 3600 // 15
    for h in range(hosts):
        name = f"host-{h:03d}"
        host = Host.objects.create(agent_id=f"agent-{name}", hostname=name, last_seen=now)
        for metric, kind, extra in METRICS:
            labels = {"host": name, **extra}
            key = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
            Series.objects.create(name=metric, kind=kind, labels=labels, labels_key=key, host=host)
    # Generated in Postgres (one statement per metric): building 24 M rows in Python took longer
    # than the rest of the bench on a shared machine.
    with connection.cursor() as cursor:
        for metric, kind, _ in METRICS:
            value = "k * 1000.0" if kind == "counter" else "50 + 30 * sin(k / 50.0 + s.host_id)"
            cursor.execute(
                f"INSERT INTO monitoring_sample SELECT s.id, %s + k * interval '15 s', {value} "
                "FROM monitoring_series s, generate_series(0, %s - 1) k WHERE s.name = %s",
                [start, points, metric],
            )
    rows = hosts * len(METRICS) * points
    roll_up(start, now)
    return rows


def roll_up(start: datetime, now: datetime) -> None:
    """Write the rollups the periodic job would have: its own SQL, a day at a time."""
    from django.db import connection

    from alerting_worker.maintenance import rollups
    from collector_server.monitoring import partitions
    from collector_server.monitoring.models import RollupState

    done = now.replace(second=0) - timedelta(minutes=1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(min(bucket), %s) FROM monitoring_rollup_1m", [start])
        day = min(start, cursor.fetchone()[0]).date()
        while day <= now.date():  # every level's partitions (a kept database may predate one)
            for spec in partitions.REGISTRY.values():
                partitions.ensure_partition(spec, day)
            day += timedelta(days=1)
        chunk = start
        while chunk < done:
            end = min(done, chunk + timedelta(days=1))
            params = {"lookback": chunk - rollups.COUNTER_LOOKBACK, "start": chunk, "end": end}
            cursor.execute(rollups.ROLLUP_1M_SQL, params)
            chunk = end
        cursor.execute(rollups.ROLLUP_1H_SQL, {"start": start - timedelta(hours=1), "end": done})
        levels = ["1m", "1h"]
        if hasattr(rollups, "ROLLUP_5M_SQL"):  # the code under test has the 5-minute level
            five = RollupState.objects.filter(level="5m").first()
            if five is None:  # a database seeded before the level: all of it
                cursor.execute("SELECT min(bucket) FROM monitoring_rollup_1m")
                start = cursor.fetchone()[0] or start
            else:  # from where it stopped (code without the level may have topped up since)
                start = min(start, five.done_until)
            cursor.execute(rollups.ROLLUP_5M_SQL, {"start": start - timedelta(minutes=5), "end": done})
            levels.append("5m")
        # VACUUM as autovacuum would have on a live database: it sets the visibility map that
        # index-only scans of the rollups rely on (tables only ANALYZEd read every heap page).
        cursor.execute("VACUUM (ANALYZE)")
    for level in levels:
        RollupState.objects.update_or_create(level=level, defaults={"done_until": done})


def top_up() -> None:
    """On a kept database, let the agents have kept sending: samples from the last one to now,
    rolled up as the job would, hosts seen now (so the last minutes look like a live fleet)."""
    from django.db import connection

    from collector_server.monitoring import partitions

    now = datetime.now(UTC).replace(microsecond=0)
    partitions.ensure_partition(partitions.SAMPLES, now.date())
    with connection.cursor() as cursor:
        cursor.execute("SELECT max(ts) FROM monitoring_sample")
        last = cursor.fetchone()[0]
        cursor.execute(
            """
            INSERT INTO monitoring_sample
            SELECT s.id, %(last)s + k * interval '15 s',
                   CASE WHEN s.kind = 'counter' THEN l.value + k * 1000.0 ELSE 50 + 30 * sin(k / 50.0) END
            FROM monitoring_series s JOIN monitoring_sample l ON l.series_id = s.id AND l.ts = %(last)s,
                 generate_series(1, (extract(epoch FROM %(now)s - %(last)s) / 15)::int) k
            """,
            {"last": last, "now": now},
        )
        cursor.execute("UPDATE monitoring_host SET last_seen = %s", [now])
    roll_up(last - timedelta(minutes=5), now)


def timed(client, path: str, runs: int) -> tuple[float, float, float, int]:
    client.get(path)  # warm-up: connection, caches
    durations = []
    status = 0
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(path)
        durations.append((time.perf_counter() - started) * 1000)
        status = response.status_code
    p95 = statistics.quantiles(durations, n=20, method="inclusive")[-1] if runs > 1 else durations[0]
    return statistics.median(durations), p95, max(durations), status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    parser.add_argument("--reuse", action="store_true", help="time the kept database, do not seed")
    args = parser.parse_args()
    if not args.reuse:
        recreate_database()
    import django
    from django.core.management import call_command

    django.setup()
    if not args.reuse:
        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        rows = seed(args.hosts, args.hours)
        print(
            f"seeded {rows} samples ({args.hosts} hosts x {args.hours} h) "
            f"in {time.perf_counter() - started:.1f}s"
        )
    else:
        call_command("migrate", verbosity=0)
        top_up()

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
    print(f"{'median ms':>10} {'p95 ms':>8} {'max ms':>8} status  endpoint ({args.runs} runs)")
    for path in paths:
        median, p95, worst, status = timed(client, path, args.runs)
        shown = path.replace("/api/v1/monitoring/", "")
        print(f"{median:10.1f} {p95:8.1f} {worst:8.1f} {status:6d}  {shown}")
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
