"""Ingest throughput: samples per second from XADD to rows committed in Postgres.

Generates realistic batches (HOSTS hosts x SERIES series, ROUNDS collection rounds),
starts WORKERS real `fleetwatch-worker` processes on the ingest queue, XADDs every
batch and waits until the workers have committed every sample. In the same run it
measures the raw binary-COPY ceiling of this machine into a table of the same shape
(same partitioning and index), prints the ratio, and times each phase of the
worker's path in-process to show where the time goes.

    .venv/bin/python bench/ingest.py [--hosts 1000] [--series 50] [--rounds 10] [--workers 2] [--wire 1,2]
    .venv/bin/python bench/ingest.py --signing ...   # signed and unsigned runs interleaved, same workers

--wire lists the wire format versions to run (docs/wire-format.md); with several, their runs are
interleaved on the same workers and each is reported against the same COPY ceiling.

It uses its own database (fleetwatch_bench, dropped at the end) and Redis db 14 (or
FLEETWATCH_BENCH_DB / FLEETWATCH_BENCH_REDIS_DB). With --signing the batches of every other run
carry an HMAC signature of a group enrollment ("bench/<host>"), which the workers verify.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import benchdb  # bench/ is the script directory, so it is on sys.path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = os.environ.get("FLEETWATCH_BENCH_DB", "fleetwatch_bench")
REDIS_URL = f"redis://127.0.0.1:6379/{os.environ.get('FLEETWATCH_BENCH_REDIS_DB', '14')}"
os.environ.update(
    DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}",
    REDIS_URL=REDIS_URL,
    FLEETWATCH_STREAM_PREFIX="fwbench",
    SECRET_KEY="bench",
    ALLOWED_HOSTS="localhost",
    DJANGO_SETTINGS_MODULE="collector_server.settings",
    LOG_LEVEL="WARNING",
    INGEST_BLOCK_MS="500",
    FLEETWATCH_REQUIRE_SIGNED_BATCHES="false",  # --signing interleaves signed and unsigned runs
)


def make_batches(hosts: int, series: int, rounds: int, wire: int = 1, epoch: int = 1) -> list[bytes]:
    from shared.wire import encode_batch, series_dict
    from shared.wire_v2 import Encoder

    encoders = [Encoder() for _ in range(hosts)]  # one per agent, as on the agents' hosts

    start = time.time() - rounds * 10
    out = []
    for r in range(rounds):
        ts = start + r * 10
        for h in range(hosts):
            body = [
                series_dict(
                    f"bench_metric_{i % 10}",
                    [[ts, float((h * 7 + i * 13 + r) % 100)]],
                    {"core": str(i)},
                    "counter" if i % 5 == 0 else "gauge",
                )
                for i in range(series)
            ]
            fields = dict(
                agent_id=f"bench-agent-{h}",
                host=f"bench-{h}",
                agent_version="bench",
                epoch=epoch,
                seq=r + 1,
                sent_at=ts,
                series=body,
            )
            if wire == 2:
                out.append(encoders[h].encode(**fields))
            else:
                out.append(encode_batch(kind="metrics", **fields))
    return out


def setup() -> None:
    benchdb.psql(f"DROP DATABASE IF EXISTS {BENCH_DB}")
    benchdb.psql(f"CREATE DATABASE {BENCH_DB}")
    import django

    django.setup()
    from django.core.management import call_command

    from collector_server.monitoring import partitions

    call_command("migrate", verbosity=0)
    partitions.ensure_ahead(days_ahead=1)


def start_workers(workers: int) -> list[subprocess.Popen]:
    """Start real worker processes, each running one long drain job on the metrics stream."""
    import redis

    from alerting_worker import jobs_guard
    from alerting_worker.ingest.consumer import ensure_group
    from shared import streams

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    ensure_group(client, streams.stream_key("metrics"))
    queue = jobs_guard.get_queue("ingest", client)
    for _ in range(workers):
        queue.enqueue("alerting_worker.ingest.jobs.drain", "metrics", 3600.0, False, job_timeout=4000)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "alerting_worker", "worker", "--queues", "ingest", "--burst"],
            cwd=ROOT,
            env=dict(os.environ, INGEST_JOB_SECONDS="3600"),
        )
        for _ in range(workers)
    ]
    time.sleep(3)  # workers up and blocking on the stream
    return procs


def run_pipeline(batches: list[bytes], procs: list[subprocess.Popen], signer=None) -> dict[str, float]:
    """XADD every batch; return the seconds until the workers have committed all their samples."""
    import redis

    from shared import streams
    from shared.wire import decode_batch

    client = redis.Redis.from_url(REDIS_URL)
    key, stats_key = streams.stream_key("metrics"), streams.stats_key()
    samples = sum(decode_batch(b).sample_count() for b in batches)
    target = int(client.hget(stats_key, "samples_ingested") or 0) + samples
    t0 = time.perf_counter()
    pipe = client.pipeline(transaction=False)
    for i, payload in enumerate(batches):
        fields = {b"b": payload}
        if signer is not None:
            fields.update(signer.fields(payload))
        pipe.xadd(key, fields)
        if i % 500 == 499:
            pipe.execute()
    pipe.execute()
    t_xadd = time.perf_counter() - t0
    while int(client.hget(stats_key, "samples_ingested") or 0) < target:
        if all(p.poll() is not None for p in procs):
            raise SystemExit("the workers exited before storing every sample")
        time.sleep(0.02)
    return {"seconds": time.perf_counter() - t0, "xadd_seconds": t_xadd, "stored": samples}


_CEILING_PAYLOADS: dict[int, bytes] = {}


def copy_ceiling(samples: int, index: bool = True) -> float:
    """Binary COPY of `samples` narrow rows, one process, into a table shaped like monitoring_sample."""
    import struct

    import psycopg

    from alerting_worker.ingest.metrics_handler import _COPY_HEADER, _COPY_TRAILER, PG_EPOCH

    row = struct.Struct(">hiqiqid")
    now = time.time()
    payload = _CEILING_PAYLOADS.get(samples) or b"".join(
        [_COPY_HEADER]
        + [
            row.pack(3, 8, i % 50_000, 8, int((now - (i % 600) - PG_EPOCH) * 1e6), 8, float(i))
            for i in range(samples)
        ]
        + [_COPY_TRAILER]
    )
    _CEILING_PAYLOADS[samples] = payload
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{BENCH_DB}", autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS ceiling")
        conn.execute("CREATE TABLE ceiling (LIKE monitoring_sample) PARTITION BY RANGE (ts)")
        day = time.strftime("%Y-%m-%d", time.gmtime(now))
        conn.execute(
            f"CREATE TABLE ceiling_p PARTITION OF ceiling FOR VALUES FROM ('{day}'::date - 1) "
            f"TO ('{day}'::date + 2)"
        )
        if index:
            conn.execute("CREATE INDEX ON ceiling (series_id, ts)")
        t0 = time.perf_counter()
        with (
            conn.transaction(),
            conn.cursor() as cur,
            cur.copy("COPY ceiling (series_id, ts, value) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            for start in range(0, len(payload), 1 << 20):
                copy.write(payload[start : start + (1 << 20)])
        seconds = time.perf_counter() - t0
        conn.execute("DROP TABLE ceiling")
    return samples / seconds


def phases(batches: list[bytes], wire: int = 1) -> dict[str, float]:
    """CPU seconds per 100k samples of the worker's Python steps, warm cache, GC paused as in the worker."""
    import hashlib
    import hmac
    from collections import Counter

    import numpy as np

    from alerting_worker.ingest.consumer import paused_gc
    from alerting_worker.ingest.metrics_handler import (
        _COPY_HEADER,
        _COPY_TRAILER,
        pack_points,
        pack_rows,
        sort_rows,
    )
    from shared.wire import decode_batch

    keyed = hmac.new(b"s" * 43, digestmod=hashlib.sha256)  # what signatures.Verifier does per entry
    signed = [(b, hmac.new(b"s" * 43, b, hashlib.sha256).hexdigest().encode()) for b in batches]
    fast: dict[tuple, int] = {}
    timings: dict[str, list[float]] = {
        "verify signature": [],
        "decode": [],
        "series lookup": [],
        "pack COPY rows": [],  # and sort them by series id, as MetricsHandler does
    }
    for attempt in range(4):  # the first pass fills the cache; the others are the warm path
        with paused_gc():
            tv = time.process_time()
            for payload, sig in signed:
                mac = keyed.copy()
                mac.update(payload)
                assert hmac.compare_digest(mac.hexdigest().encode(), sig)
            t0 = time.process_time()
            decoded = [decode_batch(b) for b in batches]
            t1 = time.process_time()
            plan = []
            for batch in decoded:
                if wire == 2:  # what MetricsHandler does: one lookup per batch, its catalog's ids
                    key = (1, batch.host, batch.catalog.raw)
                    sids = fast.get(key)
                    if sids is None:
                        sids = fast[key] = np.arange(
                            len(fast), len(fast) + len(batch.catalog), dtype=np.int64
                        )
                    plan.append((batch, sids))
                    continue
                for s in batch.series:
                    literal = (batch.host, s.name, *s.labels.items())
                    sid = fast.get(literal)
                    if sid is None:
                        sid = fast[literal] = len(fast) + 1
                    plan.append((sid, s.points, batch))
            t2 = time.process_time()
            if wire == 2:
                rows_bytes, rows, _ = pack_points(plan, Counter())
                sort_rows(b"".join((_COPY_HEADER, rows_bytes, _COPY_TRAILER)), rows)
            else:
                data, rows, _ = pack_rows(plan, {}, Counter())
                sort_rows(data, rows)
            t3 = time.process_time()
        if attempt:
            n = sum(b.sample_count() for b in decoded) / 100_000
            for name, seconds in zip(timings, (t0 - tv, t1 - t0, t2 - t1, t3 - t2), strict=True):
                timings[name].append(seconds / n)
    return {name: statistics.median(values) for name, values in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--series", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="pipeline runs; the median is reported")
    parser.add_argument("--signing", action="store_true", help="interleave signed and unsigned runs")
    parser.add_argument("--wire", default="1,2", help="wire format versions to run, e.g. 2 or 1,2")
    args = parser.parse_args()
    wires = [int(w) for w in args.wire.split(",")]
    setup()

    signers = {"unsigned": None}
    if args.signing:
        from collector_server.enrollments.models import Enrollment
        from shared.signing import Signer

        signers["signed"] = Signer(Enrollment.enroll("bench", group=True)[1])
    modes = [(f"v{wire} {mode}", wire, signer) for wire in wires for mode, signer in signers.items()]
    procs = start_workers(args.workers)
    by_mode: dict[str, list[float]] = {label: [] for label, _, _ in modes}
    ratios: dict[str, list[float]] = {label: [] for label, _, _ in modes}
    ceilings: list[float] = []
    try:
        for label, wire, signer in modes:  # a signed batch's host is "bench/<host>": its own series
            first = make_batches(args.hosts, args.series, 1, wire, epoch=1000 + len(by_mode[label]) + wire)
            warm = run_pipeline(first, procs, signer)  # creates the series once (or caches the catalogs)
            print(
                f"warm-up {label} (first batch of every host, {args.hosts * args.series:,} series): {warm['seconds']:.2f} s"
            )
        order = list(modes)
        for attempt in range(args.repeat):
            order.reverse()  # no mode always runs first
            for index, (label, wire, signer) in enumerate(order):
                # Fresh epochs: no batch is a duplicate of an earlier run's.
                epoch = 2 + attempt * len(order) + index
                batches = make_batches(args.hosts, args.series, args.rounds, wire, epoch)
                result = run_pipeline(batches, procs, signer)
                rate = result["stored"] / result["seconds"]
                by_mode[label].append(rate)
                print(
                    f"run {attempt + 1} {label}: {result['stored']:,} samples in {result['seconds']:.2f} s "
                    f"({rate:,.0f}/s; XADD of {len(batches):,} batches, {sum(map(len, batches)) / len(batches):,.0f} "
                    f"bytes each, took {result['xadd_seconds']:.2f} s)"
                )
            # The machine is shared: the ceiling is measured again after each round of runs, and
            # each run is also compared with the ceiling measured next to it.
            ceilings.append(copy_ceiling(args.hosts * args.series * args.rounds))
            for label in by_mode:
                ratios[label].append(by_mode[label][-1] / ceilings[-1])
            print(f"  COPY ceiling after round {attempt + 1}: {ceilings[-1]:,.0f} rows/s")
    finally:
        for p in procs:
            p.kill()  # a warm shutdown would wait for the hour-long drain job
            p.wait(timeout=30)
    ceiling = statistics.median(ceilings)
    print(
        f"\nraw binary COPY ceiling, 1 process, same table shape and index: median {ceiling:,.0f} rows/s "
        f"({', '.join(f'{c:,.0f}' for c in ceilings)})"
    )
    for label, rates in by_mode.items():
        median = statistics.median(rates)
        print(
            f"pipeline {label}, {args.workers} workers, XADD -> committed: median {median:,.0f} samples/s "
            f"over {len(rates)} runs; ratio to the median COPY ceiling {median / ceiling:.2f}, median of each "
            f"run's ratio to the ceiling measured next to it {statistics.median(ratios[label]):.2f} (goal 0.60)"
        )
    if args.signing:
        for wire in wires:
            plain, signed = (
                statistics.median(by_mode[f"v{wire} unsigned"]),
                statistics.median(by_mode[f"v{wire} signed"]),
            )
            print(
                f"v{wire} signed vs unsigned, interleaved: {signed:,.0f} vs {plain:,.0f} ({(signed / plain - 1) * 100:+.1f} %)"
            )
    bare = copy_ceiling(args.hosts * args.series * args.rounds, index=False)
    print(f"raw binary COPY, 1 process, same table without the (series_id, ts) index: {bare:,.0f} rows/s")
    for wire in wires:
        print(f"\nwire v{wire}: worker CPU per 100k samples, in-process, warm series cache (besides COPY):")
        measured = phases(make_batches(args.hosts, args.series, 2, wire), wire)
        for name, seconds in measured.items():
            print(f"  {name:<16} {seconds * 1000:7.1f} ms")
        own = sum(measured[name] for name in ("decode", "series lookup", "pack COPY rows"))
        print(f"  {'decode+lookup+pack':<16} {own * 1000:7.1f} ms")
        print(f"  {'COPY (ceiling)':<16} {100_000 / ceiling * 1000:7.1f} ms")
    benchdb.psql(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")


if __name__ == "__main__":
    main()
