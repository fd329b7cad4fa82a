"""Capacity model: 10,000 simulated agents' batches through the sharded path; where it first saturates.

One run measures, on this machine:

* Redis: one 10 s cycle of AGENTS agents (SERIES series each) XADDed to the shard of each
  agent id (STREAM_SHARDS) on a private 3-master Redis Cluster (ports 21700-21799, or
  FLEETWATCH_TEST_PORTS): batches/s one client pushes, how the shards spread over the masters,
  and the Redis memory one batch holds (so: memory per minute of backlog).
* A worker: WORKER_AGENTS unique batches drained in this process through the sharded drain
  (alerting_worker.ingest.shards, real Postgres): samples/s of one worker.
* Postgres: the binary-COPY ceiling of one process (one core) into the indexed sample table,
  and bytes per stored raw sample and per rollup row (disk per host per day).

No real hosts: batches are synthetic (``make_batch``). It then prints the model of
docs/scaling.md (hosts one box, three workers and a sharded cluster carry) and the first stage
that cannot keep up with AGENTS agents.

    .venv/bin/python bench/capacity.py [--agents 10000] [--series 500] [--shards 12] [--worker-agents 200]

It uses its own database (fleetwatch_bench_capacity, dropped at the end; FLEETWATCH_BENCH_DB).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import benchdb  # bench/ is the script directory, so it is on sys.path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = os.environ.get("FLEETWATCH_BENCH_DB", "fleetwatch_bench_capacity")
os.environ.update(
    DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}",
    # The RQ Redis (alert triggers after each commit): a database of its own, never db 0.
    REDIS_URL=f"redis://127.0.0.1:6379/{os.environ.get('FLEETWATCH_BENCH_REDIS_DB', '7')}",
    FLEETWATCH_STREAM_PREFIX="fwcap",
    SECRET_KEY="bench",
    DJANGO_SETTINGS_MODULE="collector_server.settings",
    LOG_LEVEL="WARNING",
    FLEETWATCH_REQUIRE_SIGNED_BATCHES="false",
    FLEETWATCH_ALLOW_VOLATILE_REDIS="true",
    ALLOWED_HOSTS="localhost",
)
INTERVAL = 10.0  # seconds between an agent's batches
TEMPLATES = 16  # distinct payloads reused for the Redis phase (content does not matter to Redis)


def batch(agent: int, series: int, seq: int, ts: float) -> bytes:
    from shared.wire import encode_batch, series_dict

    body = [
        series_dict(f"bench_metric_{i % 25}", [[ts, float((agent * 7 + i * 13 + seq) % 100)]], {"n": str(i)})
        for i in range(series)
    ]
    return encode_batch(
        kind="metrics",
        agent_id=f"cap-agent-{agent}",
        host=f"cap-{agent}",
        agent_version="bench",
        epoch=1,
        seq=seq,
        sent_at=ts,
        series=body,
    )


def redis_phase(cluster, agents: int, series: int, shards: int) -> dict[str, float]:
    """XADD one cycle of `agents` batches to their shards; return rates and memory per batch."""
    from shared import streams

    client = cluster.client()
    now = time.time()
    templates = [batch(i, series, 1, now) for i in range(TEMPLATES)]
    used_before = sum(cluster.node(p).info("memory")["used_memory"] for p in cluster.ports)
    keys = [streams.producer_key(streams.METRICS, f"cap-agent-{i}", shards) for i in range(agents)]
    per_master = Counter(cluster.master_of(key) for key in set(keys))
    per_master_batches = Counter()
    masters = {key: cluster.master_of(key) for key in set(keys)}
    started = time.perf_counter()
    pipe = client.pipeline(transaction=False)
    for i, key in enumerate(keys):
        pipe.xadd(key, {b"b": templates[i % TEMPLATES]})
        per_master_batches[masters[key]] += 1
        if i % 500 == 499:
            pipe.execute()
    pipe.execute()
    seconds = time.perf_counter() - started
    used_after = sum(cluster.node(p).info("memory")["used_memory"] for p in cluster.ports)
    for key in set(keys):
        client.delete(key)
    busiest = max(per_master_batches.values())
    return {
        "xadd_batches_per_s": agents / seconds,
        "bytes_per_batch_wire": statistics.mean(len(t) for t in templates),
        "redis_bytes_per_batch": (used_after - used_before) / agents,
        "busiest_master_share": busiest / agents,
        "shards_per_master": dict(per_master),
    }


def worker_phase(cluster, agents: int, series: int, shards: int) -> dict[str, float]:
    """Drain `agents` unique batches (on their shards) in this process, as one worker; samples/s."""
    from django.conf import settings

    from alerting_worker.ingest import jobs
    from collector_server import redis_conn
    from shared import streams

    settings.STREAM_REDIS_URL, settings.STREAM_REDIS_CLUSTER, settings.STREAM_SHARDS = (
        cluster.url,
        True,
        shards,
    )
    redis_conn._cluster.cache_clear()
    client = redis_conn.get_stream_redis()
    now = time.time() - 60
    runs = []
    for round_number in range(1, 4):  # the first round creates the series; the others are the warm path
        payloads = [batch(i, series, round_number, now + round_number) for i in range(agents)]
        pipe = client.pipeline(transaction=False)
        for i, payload in enumerate(payloads):
            pipe.xadd(streams.producer_key(streams.METRICS, f"cap-agent-{i}", shards), {b"b": payload})
        pipe.execute()
        started = time.perf_counter()
        result = jobs.drain(streams.METRICS, max_seconds=600)
        seconds = time.perf_counter() - started
        assert result["batches"] == agents, result
        if round_number > 1:
            runs.append(result["rows"] / seconds)
    return {"worker_samples_per_s": statistics.median(runs)}


def copy_ceiling(samples: int) -> float:
    """Binary COPY of `samples` rows, one process, into a table shaped (and indexed) like monitoring_sample."""
    import struct

    import psycopg

    from alerting_worker.ingest.metrics_handler import _COPY_HEADER, _COPY_TRAILER, PG_EPOCH

    row = struct.Struct(">hiqiqid")
    now = time.time()
    payload = b"".join(
        [_COPY_HEADER]
        + [
            row.pack(3, 8, i % 50_000, 8, int((now - (i % 600) - PG_EPOCH) * 1e6), 8, float(i))
            for i in range(samples)
        ]
        + [_COPY_TRAILER]
    )
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{BENCH_DB}", autocommit=True) as conn:
        conn.execute("CREATE TABLE ceiling (LIKE monitoring_sample)")
        conn.execute("CREATE INDEX ON ceiling (series_id, ts)")
        started = time.perf_counter()
        with (
            conn.transaction(),
            conn.cursor() as cur,
            cur.copy("COPY ceiling FROM STDIN (FORMAT BINARY)") as copy,
        ):
            for start in range(0, len(payload), 1 << 20):
                copy.write(payload[start : start + (1 << 20)])
        seconds = time.perf_counter() - started
        conn.execute("DROP TABLE ceiling")
    return samples / seconds


def row_bytes(rows: int = 200_000) -> dict[str, float]:
    """On-disk bytes (table + indexes) per raw sample and per rollup row, from tables of the real shape."""
    import psycopg

    sql = {
        "raw": (
            "CREATE TABLE size_raw (LIKE monitoring_sample); CREATE INDEX ON size_raw (series_id, ts);"
            "INSERT INTO size_raw SELECT i % 500, now() + (i / 500) * interval '10 s', random() "
            f"FROM generate_series(0, {rows - 1}) i"
        ),
        "rollup": (
            "CREATE TABLE size_rollup (LIKE monitoring_rollup_1m INCLUDING ALL);"
            "INSERT INTO size_rollup SELECT i % 500, now() + (i / 500) * interval '1 min', 1, 2, 3, 6, 2, 1 "
            f"FROM generate_series(0, {rows - 1}) i"
        ),
    }
    out = {}
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{BENCH_DB}", autocommit=True) as conn:
        for name, statement in sql.items():
            for part in statement.split(";"):
                conn.execute(part)
            conn.execute(f"VACUUM ANALYZE size_{name}")
            size = conn.execute(f"SELECT pg_total_relation_size('size_{name}')").fetchone()[0]
            out[f"{name}_bytes_per_row"] = size / rows
            conn.execute(f"DROP TABLE size_{name}")
    return out


def model(m: dict[str, float], agents: int, series: int, pg_cores: int) -> list[str]:
    """The figures of docs/scaling.md from the measurements `m`."""
    per_host = series / INTERVAL  # samples/s one host sends
    batches_per_host = 1 / INTERVAL
    worker_hosts = m["worker_samples_per_s"] / per_host
    pg_hosts_per_core = m["copy_rows_per_s"] / per_host
    redis_hosts_per_master = m["xadd_batches_per_s"] / batches_per_host
    backlog_minute = agents * 60 / INTERVAL * m["redis_bytes_per_batch"]
    raw_day = series * 86400 / INTERVAL * m["raw_bytes_per_row"]
    rollup_1m_day = series * 1440 * m["rollup_bytes_per_row"]
    rollup_1h_day = series * 24 * m["rollup_bytes_per_row"]
    steady = raw_day * 7 + rollup_1m_day * 30 + rollup_1h_day * 365
    lines = [
        f"one host: {series} series / {INTERVAL:g} s = {per_host:.0f} samples/s, {batches_per_host:g} batches/s",
        f"per worker: {m['worker_samples_per_s']:,.0f} samples/s -> {worker_hosts:,.0f} hosts",
        f"per Postgres core (binary COPY ceiling, indexed): {m['copy_rows_per_s']:,.0f} rows/s -> "
        f"{pg_hosts_per_core:,.0f} hosts",
        f"per Redis master (one client's pipelined XADD): {m['xadd_batches_per_s']:,.0f} batches/s -> "
        f"{redis_hosts_per_master:,.0f} hosts",
        f"Redis memory per batch {m['redis_bytes_per_batch'] / 1024:.1f} KiB (wire {m['bytes_per_batch_wire'] / 1024:.1f} "
        f"KiB); backlog of {agents:,} agents: {backlog_minute / 2**20:,.0f} MiB per minute",
        f"Postgres disk per host per day: raw {raw_day / 2**20:.1f} MiB, 1m rollups {rollup_1m_day / 2**20:.2f} MiB, "
        f"1h rollups {rollup_1h_day / 2**20:.3f} MiB; steady state with 7/30/365 days retention "
        f"{steady / 2**20:,.0f} MiB per host",
        f"one box (1 worker, Postgres on the same cores): ~{min(worker_hosts, pg_hosts_per_core):,.0f} hosts",
        f"3 workers: ~{min(3 * worker_hosts, pg_hosts_per_core * pg_cores):,.0f} hosts "
        f"(Postgres with {pg_cores} cores)",
    ]
    demand = {
        "workers (one each)": agents / worker_hosts,
        "Postgres cores (COPY ceiling)": agents / pg_hosts_per_core,
        "Redis masters (one client each)": agents / redis_hosts_per_master,
    }
    lines.append(f"{agents:,} agents need: " + ", ".join(f"{n:.1f} {name}" for name, n in demand.items()))
    # Workers scale out (add processes); the stages that do not: the one Postgres primary that
    # takes every write, and the Redis master holding the busiest shards.
    stages = {
        "Postgres primary (every write)": agents / (pg_hosts_per_core * pg_cores),
        "busiest Redis master": agents * m["busiest_master_share"] / redis_hosts_per_master,
    }
    name, load = max(stages.items(), key=lambda item: item[1])
    verdict = "saturated" if load >= 1 else "keeps up"
    lines.append(
        f"first bottleneck for {agents:,} agents: {name}, at {load:.2f}x its capacity ({verdict}); "
        + ", ".join(f"{stage} {value:.2f}x" for stage, value in stages.items())
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--series", type=int, default=500)
    parser.add_argument("--shards", type=int, default=12)
    parser.add_argument("--worker-agents", type=int, default=200)
    parser.add_argument("--copy-rows", type=int, default=500_000)
    parser.add_argument("--pg-cores", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()

    from tests.ingest.redis_cluster import RedisClusterNodes

    folder = Path(tempfile.mkdtemp(prefix="fw-capacity-"))
    cluster = RedisClusterNodes(folder, appendfsync="everysec").start()
    benchdb.create(BENCH_DB)
    try:
        from collector_server.monitoring import partitions

        partitions.ensure_ahead(days_ahead=1)
        measured: dict[str, float] = {}
        redis_figures = redis_phase(cluster, args.agents, args.series, args.shards)
        print(f"shards per master ({args.shards} shards): {redis_figures.pop('shards_per_master')}")
        measured.update(redis_figures)
        measured.update(worker_phase(cluster, args.worker_agents, args.series, args.shards))
        measured["copy_rows_per_s"] = copy_ceiling(args.copy_rows)
        measured.update(row_bytes())
        print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        for name, value in measured.items():
            print(f"{name}: {value:,.2f}")
        print("--- model (docs/scaling.md) ---")
        for line in model(measured, args.agents, args.series, args.pg_cores):
            print(line)
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
        benchdb.drop(BENCH_DB)


if __name__ == "__main__":
    main()
