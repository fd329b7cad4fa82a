"""Measure the PromQL API's query_range latency: `sum by (host) (rate(x[5m]))` over 100 hosts.

    .venv/bin/python bench/promql.py [--hosts 100] [--days 7] [--runs 20] [--keep] [--reuse]

Seeds a throwaway database (fleetwatch_bench_promql, or $FLEETWATCH_BENCH_PROMQL_DB) with one
counter per host: 1-minute rollups for `--days` days (written with COPY, as the rollup job would
have left them, RollupState set to a minute ago; the 5-minute rollups from them by the rollup
job's statement) and raw samples every 15 s for the last 10 minutes (the part the rollup job
has not reached yet, which the query reads raw). Then it times
/prometheus/api/v1/query_range through Django's test client (the full DRF stack and JSON
rendering, no HTTP) and prints p50 and p95 of `--runs` calls for:

  * 24 h at a 60 s step (1,440 points per host);
  * 7 days at a 600 s step (1,008 points per host: what a 1,000-pixel Grafana panel asks for);
  * 7 days at a 60 s step (10,080 points per host, the most the API allows at 7 days).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# FLEETWATCH_BENCH_PROMQL_DB: another name, so that two runs on one server do not share a database.
BENCH_DB = os.environ.get("FLEETWATCH_BENCH_PROMQL_DB", "fleetwatch_bench_promql")
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "collector_server.settings")
os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}"
# The PromQL results cache: in a Redis database of its own (--redis-db), under a prefix of
# this run's, deleted at the end.
os.environ["FLEETWATCH_STREAM_PREFIX"] = f"bench-promql-{os.getpid()}"

from bench import benchdb  # noqa: E402

METRIC = "bench_requests_total"
QUERY = f"sum by (host) (rate({METRIC}[5m]))"


def seed(hosts: int, days: int) -> tuple[int, int]:
    """Write the rollups and the raw tail; return (rollup rows, raw rows)."""
    from django.db import connection

    from alerting_worker.maintenance import rollups as rollup_job
    from collector_server.monitoring import partitions
    from collector_server.monitoring.models import Host, RollupState, Series
    from collector_server.prometheus_api.promql import rollup_blocks

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    # Twenty minutes more than the longest range (its start aligned down to a 600 s step, then
    # a 5-minute window): the first step's window is full (series older
    # than the range; a series starting inside it takes the slower anchored statement).
    start = now - timedelta(days=days, minutes=20)
    day = start.date() - timedelta(days=1)
    while day <= now.date() + timedelta(days=1):
        for spec in partitions.REGISTRY.values():
            partitions.ensure_partition(spec, day)
        day += timedelta(days=1)
    minutes = days * 1440 + 20
    rollups, raw = io.StringIO(), io.StringIO()
    raw_rows = 0
    for h in range(hosts):
        name = f"host-{h:03d}"
        host = Host.objects.create(agent_id=f"agent-{name}", hostname=name, last_seen=now)
        labels = {"host": name, "code": "200"}
        series = Series.objects.create(
            name=METRIC, kind="counter", labels=labels, labels_key=f"code=200,host={name}", host=host
        )
        per_minute = 60.0 * (1 + h % 7)
        # A counter sampled every 15 s (at :00, :15, :30, :45): value(t) = per_minute * (minutes since start + 1/4).
        for m in range(minutes):
            bucket = start + timedelta(minutes=m)
            first, last = per_minute * (m + 0.25), per_minute * (m + 1)
            rollups.write(
                f"{series.id}\t{bucket.isoformat()}\t{first}\t{last}\t{per_minute * (4 * m + 2.5)}\t4\t{last}"
                f"\t{per_minute}\t{bucket.isoformat()}\t{first}\t{(bucket + timedelta(seconds=45)).isoformat()}"
                "\t0\t0\n"
            )
        for k in range(40):
            ts = now - timedelta(seconds=600 - 15 * k)
            raw.write(f"{series.id}\t{ts.isoformat()}\t{per_minute * (minutes - 10 + k / 4 + 0.25)}\n")
            raw_rows += 1
    with connection.cursor() as cursor:
        rollups.seek(0)
        with cursor.copy(
            "COPY monitoring_rollup_1m (series_id, bucket, min, max, sum, count, last, increase, "
            "first_ts, first, last_ts, resets, first_reset) FROM STDIN"
        ) as copy:
            copy.write(rollups.read())
        raw.seek(0)
        with cursor.copy("COPY monitoring_sample FROM STDIN") as copy:
            copy.write(raw.read())
        # The 5-minute buckets (edges included) from the minutes, by the rollup job's own statement.
        cursor.execute(rollup_job.ROLLUP_5M_SQL, {"start": start, "end": now - timedelta(minutes=1)})
        cursor.execute("ANALYZE")
    RollupState.objects.create(level="1m", done_until=now - timedelta(minutes=1))
    RollupState.objects.create(level="5m", done_until=now - timedelta(minutes=1))
    # The packed blocks of the sealed buckets, as the rollup job leaves them.
    for level in ("1m", "5m"):
        rollup_blocks.pack_all(level, now - timedelta(minutes=1))
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE monitoring_block_1m")
        cursor.execute("VACUUM ANALYZE monitoring_block_5m")
    return hosts * minutes, raw_rows


@contextmanager
def variant(name: str) -> Iterator[None]:
    """ "new": the code as it is; "rows": numpy over bucket rows (no packed blocks); "old": the
    SQL-only fast path over the 1-minute rollups.

    "old" is what answered before vectorised.py and the 5-minute level's edges (the same
    statements, still the fallback), "rows" what answered before the packed blocks (the
    same code, with the blocks' state unseen), so one run times them under the same load.
    """
    from collector_server.prometheus_api.promql import rollup_blocks, storage, vectorised

    if name == "new":
        yield
        return
    if name == "rows":
        packed = rollup_blocks.packed_range
        rollup_blocks.packed_range = lambda level: None
        try:
            yield
        finally:
            rollup_blocks.packed_range = packed
        return
    arrays, five = vectorised.matrix_arrays, storage._five_minutes
    vectorised.matrix_arrays = lambda *args, **kwargs: None
    storage._five_minutes = lambda level, *args: level
    try:
        yield
    finally:
        vectorised.matrix_arrays, storage._five_minutes = arrays, five


def refresh_percentiles(client, start: int, end: int, step: int, runs: int) -> dict[str, tuple[float, float]]:
    """p50 and p95 with the results cache on: "refresh", then "cold".

    Both move the range forward by one step per call (as Grafana refreshing a panel does),
    from `runs` steps before (`start`, `end`). "refresh": the cache as the previous call left
    it (one untimed call fills it first). "cold": the cache's generation is bumped before each
    call, so nothing cached is reachable (everything computed, and stored). One after the
    other, not alternating: a cold call stores the very blocks the next refresh would read.
    """
    from collector_server.prometheus_api.promql import results_cache

    def params(i: int) -> dict[str, object]:
        return {
            "query": QUERY,
            "start": start - (runs - i) * step,
            "end": end - (runs - i) * step,
            "step": step,
        }

    durations: dict[str, list[float]] = {"refresh": [], "cold": []}
    for name in durations:
        results_cache.bump_generation()
        client.get("/prometheus/api/v1/query_range", params(0))
        for i in range(1, runs + 1):
            if name == "cold":
                results_cache.bump_generation()
            started = time.perf_counter()
            response = client.get("/prometheus/api/v1/query_range", params(i))
            durations[name].append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.content
    out = {}
    for name, times in durations.items():
        times.sort()
        out[name] = (statistics.median(times), times[min(len(times) - 1, round(0.95 * (len(times) - 1)))])
    return out


def percentiles(
    client, params: dict[str, object], runs: int, variants: list[str]
) -> dict[str, tuple[float, float, int, int, str]]:
    """p50, p95, status, series and the body's digest per variant, the variants alternating."""
    durations: dict[str, list[float]] = {name: [] for name in variants}
    last: dict[str, tuple[int, int, str]] = {}
    for _ in range(runs):
        for name in variants:
            with variant(name):
                started = time.perf_counter()
                response = client.get("/prometheus/api/v1/query_range", params)
                durations[name].append((time.perf_counter() - started) * 1000)
            status = response.status_code
            result = response.json()["data"]["result"] if status == 200 else []
            # Values compared as numbers (the SQL path writes timestamps as 1700000000.000).
            digest = repr([(r["metric"], [(float(t), float(v)) for t, v in r["values"]]) for r in result])
            last[name] = (status, len(result), digest)
    out = {}
    for name, times in durations.items():
        times.sort()
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        out[name] = (statistics.median(times), p95, *last[name])
    return out


def explain(client, params: dict[str, object]) -> None:
    """Print the plans, with actual times and buffers, of the statements one query runs."""
    from django.db import connection, transaction

    from collector_server.prometheus_api.promql import storage

    statements = []
    originals = {name: getattr(storage, name) for name in ("fetch", "fetch_bytes")}

    def recording(name):
        def run(sql, values, local=None):
            statements.append((sql, values, local))
            return originals[name](sql, values, local)

        return run

    for name in originals:
        setattr(storage, name, recording(name))
    try:
        client.get("/prometheus/api/v1/query_range", params)
    finally:
        for name, function in originals.items():
            setattr(storage, name, function)
    for sql, values, local in statements:
        with transaction.atomic(), connection.cursor() as cursor:
            for name, value in (local or {}).items():
                cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, values)
            print("\n".join(row[0] for row in cursor.fetchall()), end="\n\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    parser.add_argument("--reuse", action="store_true", help="use the database a --keep run left")
    parser.add_argument("--cases", default="0,1,2", help="which of the three cases to run (indices)")
    parser.add_argument(
        "--explain",
        action="store_true",
        help="print EXPLAIN (ANALYZE, BUFFERS) of the statements of each case",
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="time the old SQL-only path (1-minute rollups) and the new one alternately, same run",
    )
    parser.add_argument(
        "--compare-blocks",
        action="store_true",
        help="time numpy over bucket rows (before the packed blocks) and the new path alternately, same run",
    )
    parser.add_argument(
        "--refresh",
        action="store_true",
        help="also time the results cache: cold (nothing cached) and dashboard refresh (range +1 step per call)",
    )
    parser.add_argument("--redis-db", type=int, default=1, help="Redis database for the results cache")
    args = parser.parse_args()
    if args.reuse:
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
    else:
        benchdb.create(BENCH_DB)
        started = time.perf_counter()
        rollup_rows, raw_rows = seed(args.hosts, args.days)
        print(
            f"seeded {rollup_rows} 1-minute rollups and {raw_rows} raw samples "
            f"({args.hosts} hosts x {args.days} days) in {time.perf_counter() - started:.1f}s"
        )
    from django.contrib.auth.models import User
    from django.test import Client

    from collector_server.orgs import roles
    from collector_server.orgs.models import Membership
    from collector_server.orgs.scope import default_organization_id

    user, _ = User.objects.get_or_create(username="bench")
    # The seeded series are in the default organisation; the caller must be a member to see them.
    Membership.all_objects.get_or_create(
        user=user, organization_id=default_organization_id(), role=roles.VIEWER
    )
    client = Client()
    client.force_login(user)
    from collector_server.monitoring.models import RollupState

    # The seeded data ends at the minute the seed started (the rollups a minute before it).
    end = int(RollupState.objects.get(level="1m").done_until.timestamp()) + 60
    cases = [
        ("24 h, step 60 s", end - 86400, 60),
        (f"{args.days} d, step 600 s", end - args.days * 86400, 600),
        (f"{args.days} d, step 60 s", end - args.days * 86400, 60),
    ]
    print(f"query: {QUERY}   load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{'p50 ms':>8} {'p95 ms':>8} status series  range")
    chosen = [cases[int(i)] for i in args.cases.split(",")]
    from django.conf import settings

    from collector_server.redis_conn import get_redis

    settings.REDIS_URL = f"redis://127.0.0.1:6379/{args.redis_db}"
    # The cold path first: without the results cache (--refresh times it separately).
    settings.PROMQL_RESULTS_CACHE = False
    variants = (["old"] if args.compare else []) + (["rows"] if args.compare_blocks else []) + ["new"]
    tagged = len(variants) > 1
    for label, start, step in chosen:
        # Grafana aligns a panel's range to its step (start and end whole multiples of it).
        params = {"query": QUERY, "start": start // step * step, "end": end // step * step, "step": step}
        for name in variants:
            with variant(name):
                client.get("/prometheus/api/v1/query_range", params)  # warm the connection and caches
        figures = percentiles(client, params, args.runs, variants)
        for name in variants:
            p50, p95, status, series, _ = figures[name]
            tag = f"  ({name})" if tagged else ""
            print(f"{p50:8.1f} {p95:8.1f} {status:6d} {series:6d}  {label}{tag}")
        for other in variants[:-1]:
            same = figures[other][4] == figures["new"][4]
            print(f"{'':34}{other} and new answers {'identical' if same else 'DIFFER'}")
        if args.refresh:
            settings.PROMQL_RESULTS_CACHE = True
            figures = refresh_percentiles(client, params["start"], params["end"], step, args.runs)
            settings.PROMQL_RESULTS_CACHE = False
            for name in ("cold", "refresh"):
                p50, p95 = figures[name]
                print(f"{p50:8.1f} {p95:8.1f}                {label}  (results cache, {name})")
        if args.explain:
            explain(client, params)
    client_redis = get_redis()
    for key in client_redis.scan_iter(match=f"{os.environ['FLEETWATCH_STREAM_PREFIX']}:*"):
        client_redis.delete(key)
    if not args.keep:
        benchdb.drop(BENCH_DB)


if __name__ == "__main__":
    main()
