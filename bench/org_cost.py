"""What organisations cost on the ingest path: the per-chunk organisation lookup and the log column.

(a) ``organisations_for_agents`` for a chunk of AGENTS agents (one SELECT on monitoring_host, one
    for the default organisation when an agent has no host row yet): milliseconds per chunk.
(b) Log records through the real handler (validation + COPY): records per second with the
    organisation looked up per chunk, and with it given (the lookup's share of the cost).
(c) The size of a stored log record with and without the 4-byte ``organization_id`` column
    (``pg_column_size`` of the row), and of a sample row (unchanged: the organisation is on the series).

    .venv/bin/python bench/org_cost.py [--records 50000] [--agents 500] [--runs 3]

It uses its own database (fleetwatch_bench_orgs, created and dropped). Keep it short: the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import benchdb  # bench/ is the script directory, so it is on sys.path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "fleetwatch_bench_orgs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "collector_server.settings")
    os.environ.setdefault("DEBUG", "true")
    benchdb.create(BENCH_DB)
    try:
        run(args)
    finally:
        benchdb.drop(BENCH_DB)


def run(args: argparse.Namespace) -> None:
    from django.db import connection, transaction

    from collector_server.logs import writer
    from collector_server.monitoring import partitions
    from collector_server.monitoring.models import Host
    from collector_server.orgs.scope import organisations_for_agents
    from shared.wire import Batch

    partitions.ensure_ahead(days_ahead=1)
    agents = [f"agent-{i}" for i in range(args.agents)]
    Host.objects.bulk_create(
        [Host(agent_id=a, hostname=a, organization_id=organisations_for_agents([a])[a]) for a in agents[::2]]
    )
    for size in (10, len(agents)):
        lookups = []
        for _ in range(args.runs * 10):
            start = time.perf_counter()
            organisations_for_agents(agents[:size])
            lookups.append((time.perf_counter() - start) * 1000)
        print(
            f"(a) organisations_for_agents, {size} agents (half known): median {statistics.median(lookups):.2f} ms"
        )

    now = time.time()
    per_batch = 100
    batches = [
        Batch(
            kind="logs",
            agent_id=agents[i % len(agents)],
            host=f"web-{i % 50}",
            agent_version="1",
            epoch=1,
            seq=i,
            sent_at=now,
            logs=[
                {
                    "ts": now - 1,
                    "level": "INFO",
                    "message": f"GET /api/v1/items/{j} 200 in 12 ms",
                    "service": "api",
                }
                for j in range(per_batch)
            ],
        )
        for i in range(args.records // per_batch)
    ]
    chunk = 10
    window = writer.current_window()

    def ingest(given: bool) -> float:
        start = time.perf_counter()
        for first in range(0, len(batches), chunk):
            part = batches[first : first + chunk]
            orgs = {b.agent_id: 1 for b in part} if given else None
            with transaction.atomic(), connection.cursor() as cursor:
                rows = writer.rows_from_batches(part, window, Counter(), orgs=orgs)
                writer.copy_rows(cursor.cursor, rows)
        return args.records / (time.perf_counter() - start)

    ingest(True)  # warm-up: partitions, caches
    looked_up, given = [], []
    for _ in range(args.runs):  # alternate, so load from other processes hits both alike
        looked_up.append(ingest(False))
        given.append(ingest(True))
    print(
        f"(b) log records/s through validation + COPY, {chunk} batches of {per_batch} per transaction: "
        f"organisation looked up per chunk median {statistics.median(looked_up):,.0f}, "
        f"given {statistics.median(given):,.0f} ({args.runs} runs each)"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT avg(pg_column_size(e.*)), avg(pg_column_size(e.*) - pg_column_size(e.organization_id)) "
            "FROM logs_entry e"
        )
        with_col, without = cursor.fetchone()
        cursor.execute("SELECT pg_column_size(ROW(1::bigint, now()::timestamptz, 1.0::float8))")
        sample = cursor.fetchone()[0]
    print(
        f"(c) log record: {float(with_col):.0f} bytes with the column, {float(without):.0f} without "
        f"(+{float(with_col) - float(without):.0f} bytes, {100 * (float(with_col) / float(without) - 1):.1f} %); "
        f"sample row {sample} bytes, unchanged"
    )


if __name__ == "__main__":
    main()
