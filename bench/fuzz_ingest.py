"""Fuzz ingest: malformed entries of every kind interleaved with valid batches, drained by real workers.

Adds MALFORMED entries (type-confused fields, out-of-range numbers, NaN and infinities,
2**64-1 epochs, NUL, invalid UTF-8, deep nesting, huge strings, random bytes, and for wire
format version 2 every field of the catalog and damaged point records, ...) spread
over the metrics and logs streams, interleaved with VALID metrics batches (half of them
version 2) and VALID logs
batches, then starts WORKERS real `alerting_worker worker` processes that drain both
streams and waits until every entry is stored or dead-lettered. Prints what was stored,
dead-lettered and left pending, whether the workers are alive, and the drain time.

    .venv/bin/python bench/fuzz_ingest.py                 # 10,000 malformed, 1,000 + 1,000 valid
    .venv/bin/python bench/fuzz_ingest.py --small         # a tenth of that

Runs in its own database (fleetwatch_bench_fuzz) on the local Postgres and its own Redis
database (FUZZ_REDIS_DB, default 1), both emptied first.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import benchdb  # bench/ is the script directory, so it is on sys.path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = os.environ.get("FLEETWATCH_BENCH_DB", "fleetwatch_bench_fuzz")
REDIS_URL = f"redis://127.0.0.1:6379/{os.environ.get('FUZZ_REDIS_DB', '1')}"
os.environ.update(
    DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}",
    REDIS_URL=REDIS_URL,
    FLEETWATCH_STREAM_PREFIX="fwfuzz",
    SECRET_KEY="bench",
    ALLOWED_HOSTS="localhost",
    FLEETWATCH_REQUIRE_SIGNED_BATCHES="false",  # the entries are unsigned: decoding is what is fuzzed
    DJANGO_SETTINGS_MODULE="collector_server.settings",
    LOG_LEVEL="CRITICAL",  # every dead letter is an ERROR line: 10,000 of them would be the bench
    INGEST_BLOCK_MS="200",
    DEADLETTER_MAXLEN="1000000",
)
SERIES_PER_BATCH = 10
RECORDS_PER_BATCH = 10


def deep(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def metrics_body(n: int, now: float) -> dict[str, Any]:
    host = f"fuzz-{n % 100}"
    series = [
        {
            "name": f"fuzz_metric_{i}",
            "type": "gauge",
            "labels": {"core": str(i)},
            "points": [[now - n * 0.01, 1.0]],
        }
        for i in range(SERIES_PER_BATCH)
    ]
    return {"v": 1, "kind": "metrics", "agent": {"id": f"agent-{host}", "host": host, "version": "1"},
            "epoch": 1, "seq": n, "sent_at": now, "series": series}  # fmt: skip


class Raw:
    """A version 2 field value sent as it is (not packed into bin)."""

    def __init__(self, value: Any) -> None:
        self.value = value


def metrics_body_v2(n: int, now: float) -> dict[str, Any]:
    """A version 2 body; `catalog` (a list) and `points` (a list of triples) are packed by pack_v2."""
    host = f"fuzz-{n % 100}"
    catalog = [[f"fuzz_metric_{i}", "gauge", {"core": str(i)}] for i in range(SERIES_PER_BATCH)]
    points = [[i, now - n * 0.01, 1.0] for i in range(SERIES_PER_BATCH)]
    return {"v": 2, "kind": "metrics", "agent": {"id": f"agent-{host}", "host": host, "version": "1"},
            "epoch": 3, "seq": n, "sent_at": now, "catalog": catalog, "points": points}  # fmt: skip


def pack_v2(body: dict[str, Any]) -> bytes:
    import msgpack

    body = dict(body)
    for key in ("catalog", "points"):
        value = body[key]
        if type(value) is Raw:
            body[key] = value.value
        elif key == "catalog":
            body[key] = msgpack.packb(value)
        else:
            body[key] = b"".join(struct.pack(">Idd", *p) for p in value)
    return msgpack.packb(body)


def logs_body(n: int, now: float) -> dict[str, Any]:
    host = f"fuzz-{n % 100}"
    logs = [
        {"ts": now - n * 0.01, "level": "INFO", "message": f"record {i} of batch {n}", "attrs": {"i": i}}
        for i in range(RECORDS_PER_BATCH)
    ]
    return {"v": 1, "kind": "logs", "agent": {"id": f"agent-{host}", "host": host, "version": "1"},
            "epoch": 2, "seq": n, "sent_at": now, "logs": logs}  # fmt: skip


def _set(path: tuple, value: Any):
    def mutate(body: dict[str, Any]) -> None:
        target: Any = body
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return mutate


NAN, INF, MAX_U64 = math.nan, math.inf, 2**64 - 1
# The kinds of malformed entries (issue 8): (name, stream kind, mutation of a valid body).
COMMON = [
    ("v is a map", _set(("v",), {"a": 1})),
    ("kind is a list", _set(("kind",), ["metrics"])),
    ("agent is a list", _set(("agent",), [1])),
    ("agent.id is a map", _set(("agent", "id"), {"x": 1})),
    ("agent.id has NUL", _set(("agent", "id"), "a\x00b")),
    ("agent.host is huge", _set(("agent", "host"), "h" * 1_000_000)),
    ("agent.version is 60 chars", _set(("agent", "version"), "v" * 60)),
    ("agent.labels value is a map", _set(("agent", "labels"), {"env": {"x": 1}})),
    ("epoch is 2**64-1", _set(("epoch",), MAX_U64)),
    ("seq is 2**64-1", _set(("seq",), MAX_U64)),
    ("seq is negative", _set(("seq",), -1)),
    ("seq is a float", _set(("seq",), 1.5)),
    ("sent_at is NaN", _set(("sent_at",), NAN)),
    ("sent_at is inf", _set(("sent_at",), INF)),
    ("sent_at is a string", _set(("sent_at",), "now")),
]
METRICS_ONLY = [
    ("series is a map", _set(("series",), {"a": 1})),
    ("series[0] is a string", _set(("series", 0), "cpu")),
    ("series[0].type is a map", _set(("series", 0, "type"), {"t": 1})),
    ("series[0].type is a list", _set(("series", 0, "type"), ["gauge"])),
    ("series[0].name is a map", _set(("series", 0, "name"), {"n": 1})),
    ("series[0].name is 300 chars", _set(("series", 0, "name"), "m" * 300)),
    ("series[0].labels is a list", _set(("series", 0, "labels"), [["a", "b"]])),
    ("label value is a map", _set(("series", 0, "labels", "core"), {"v": 1})),
    ("label value has NUL", _set(("series", 0, "labels", "core"), "0\x00")),
    ("points is a map", _set(("series", 0, "points"), {"ts": 1})),
    ("point is a map", _set(("series", 0, "points", 0), {"a": 1, "b": 2})),
    ("point value is a map", _set(("series", 0, "points", 0, 1), {"v": 1})),
    ("point ts is NaN", _set(("series", 0, "points", 0, 0), NAN)),
    ("point ts is 2**64-1", _set(("series", 0, "points", 0, 0), MAX_U64)),
    ("series nested 40 deep", _set(("series", 0, "labels"), deep(40))),
]
V2_ONLY = [
    ("v2: catalog is a string", _set(("catalog",), Raw("up"))),
    ("v2: catalog is a list, not bin", _set(("catalog",), Raw([["up", "gauge", {}]]))),
    ("v2: catalog is missing", _set(("catalog",), Raw(None))),
    ("v2: catalog bytes not msgpack", _set(("catalog",), Raw(b"\xc1\xc1"))),
    ("v2: catalog holds a map", _set(("catalog",), Raw(b"\x81\xa1a\x01"))),
    ("v2: catalog nested 100,000 deep", _set(("catalog",), Raw(b"\x91" * 100_000 + b"\x90"))),
    ("v2: catalog entry of 2 items", _set(("catalog", 0), ["up", "gauge"])),
    ("v2: catalog entry is a map", _set(("catalog", 0), {"name": "up"})),
    ("v2: catalog name is a map", _set(("catalog", 0, 0), {"n": 1})),
    ("v2: catalog name is 300 chars", _set(("catalog", 0, 0), "m" * 300)),
    ("v2: catalog type is histogram", _set(("catalog", 0, 1), "histogram")),
    ("v2: catalog labels is a list", _set(("catalog", 0, 2), [["a", "b"]])),
    ("v2: catalog labels is nil", _set(("catalog", 0, 2), None)),
    ("v2: label value is a map", _set(("catalog", 0, 2, "core"), {"v": 1})),
    ("v2: label value has NUL", _set(("catalog", 0, 2, "core"), "0\x00")),
    ("v2: points is a list, not bin", _set(("points",), Raw([[0, 1.0, 1.0]]))),
    ("v2: points is a string", _set(("points",), Raw("points"))),
    ("v2: points cut mid-record", _set(("points",), Raw(b"\x00" * 39))),
    ("v2: point index past the catalog", _set(("points", 0, 0), SERIES_PER_BATCH)),
    ("v2: point index 2**32-1", _set(("points", 0, 0), 2**32 - 1)),
    ("v2: point ts is NaN", _set(("points", 0, 1), NAN)),
    ("v2: point ts is inf", _set(("points", 0, 1), INF)),
    ("v2: point ts in milliseconds", _set(("points", 0, 1), 1.7e12)),
    ("v2: point ts is negative", _set(("points", 0, 1), -1.0)),
    ("v2: a logs batch", _set(("kind",), "logs")),
]
LOGS_ONLY = [
    ("logs is a map", _set(("logs",), {"a": 1})),
    ("logs[0] is a list", _set(("logs", 0), [1])),
    ("level is a map", _set(("logs", 0, "level"), {"name": "INFO"})),
    ("level is a list", _set(("logs", 0, "level"), ["INFO"])),
    ("level is NaN", _set(("logs", 0, "level"), NAN)),
    ("level is inf", _set(("logs", 0, "level"), INF)),
    ("message is a map", _set(("logs", 0, "message"), {"m": 1})),
    ("ts is NaN", _set(("logs", 0, "ts"), NAN)),
    ("ts is 2**64-1", _set(("logs", 0, "ts"), MAX_U64)),
    ("host is a list", _set(("logs", 0, "host"), ["h"])),
    ("service is a map", _set(("logs", 0, "service"), {"s": 1})),
    ("attrs is a list", _set(("logs", 0, "attrs"), [1, 2])),
    ("attrs nested 40 deep", _set(("logs", 0, "attrs"), {"x": deep(40)})),
    ("extra field nested 40 deep", _set(("logs", 0, "stack"), deep(40))),
]


def malformed(kind: str, n: int, now: float, rng: random.Random) -> tuple[str, bytes]:
    import msgpack

    if kind == "metrics" and n % 2:  # every other malformed metrics entry is a version 2 batch
        body = metrics_body_v2(n, now)
        name, mutate = (COMMON + V2_ONLY)[n // 2 % len(COMMON + V2_ONLY)]
        mutate(body)
        return name, pack_v2(body)
    body = metrics_body(n, now) if kind == "metrics" else logs_body(n, now)
    kinds = COMMON + (METRICS_ONLY if kind == "metrics" else LOGS_ONLY) + [("invalid UTF-8", None)] * 2
    kinds += [("random bytes", None)] * 2 + [("deep msgpack", None), ("trailing bytes", None)]
    name, mutate = kinds[n % len(kinds)]
    if mutate is not None:
        mutate(body)
        return name, msgpack.packb(body)
    if name == "invalid UTF-8":
        body["agent"]["host"] = "\u2603\u2603"
        return name, msgpack.packb(body).replace("\u2603\u2603".encode(), b"\xff\xfe\xfd\xff\xfe\xfd")
    if name == "random bytes":
        return name, rng.randbytes(rng.randint(0, 200))
    if name == "deep msgpack":
        return name, b"\x91" * 100_000 + b"\x90"
    return name, msgpack.packb(body) + b"\xc1"


def build(
    malformed_count: int, valid_metrics: int, valid_logs: int, seed: int = 8
) -> dict[str, list[tuple[str, bytes]]]:
    """Return the entries of each stream, interleaved: ("valid", bytes) or (malformed kind, bytes)."""
    import msgpack

    rng = random.Random(seed)
    now = time.time()
    out: dict[str, list[tuple[str, bytes]]] = {"metrics": [], "logs": []}
    for n in range(valid_metrics):  # half of them in wire format version 2
        out["metrics"].append(
            ("valid", pack_v2(metrics_body_v2(n, now)) if n % 2 else msgpack.packb(metrics_body(n, now)))
        )
    for n in range(valid_logs):
        out["logs"].append(("valid", msgpack.packb(logs_body(n, now))))
    for n in range(malformed_count):
        kind = "metrics" if n % 2 == 0 else "logs"
        out[kind].append(malformed(kind, n // 2, now, rng))
    for entries in out.values():
        rng.shuffle(entries)
    return out


def start_workers(workers: int) -> list[subprocess.Popen]:
    """Start real worker processes; each takes one long drain job (the metrics or the logs stream)."""
    import redis

    from alerting_worker import jobs_guard

    client = redis.Redis.from_url(REDIS_URL)
    queue = jobs_guard.get_queue("ingest", client)  # workers run only jobs enqueued through the guard
    for i in range(workers):
        kind = "metrics" if i % 2 == 0 else "logs"
        queue.enqueue("alerting_worker.ingest.jobs.drain", kind, 3600.0, False, job_timeout=4000)
    return [
        subprocess.Popen(
            [sys.executable, "-m", "alerting_worker", "worker", "--queues", "ingest", "--burst"],
            cwd=ROOT,
            env=dict(os.environ, INGEST_JOB_SECONDS="3600"),
            stdout=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]


def stop(procs: list[subprocess.Popen]) -> None:
    """Stop the workers: their drain jobs run for an hour, so the second signal cuts them short."""
    for signal_number in (2, 2):
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal_number)
        time.sleep(1)
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def state(client) -> dict[str, int]:
    from alerting_worker.ingest import stats
    from shared import streams

    counters = stats.read(client)
    out = {
        "batches_ingested": counters.get("batches_ingested", 0),
        "batches_deadlettered": counters.get("batches_deadlettered", 0),
        "samples_ingested": counters.get("samples_ingested", 0),
        "logs_ingested": counters.get("logs_ingested", 0),
        "pending": 0,
        "lag": 0,
    }
    for kind in ("metrics", "logs"):
        for group in client.xinfo_groups(streams.stream_key(kind)):
            out["pending"] += int(group["pending"])
            out["lag"] += int(group.get("lag") or 0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--malformed", type=int, default=10_000)
    parser.add_argument("--valid-metrics", type=int, default=1_000)
    parser.add_argument("--valid-logs", type=int, default=1_000)
    parser.add_argument(
        "--workers", type=int, default=2, help="worker processes (half drain metrics, half logs)"
    )
    parser.add_argument("--small", action="store_true", help="a tenth of every count")
    parser.add_argument("--timeout", type=float, default=110.0, help="give up after this many seconds")
    args = parser.parse_args()
    if args.small:
        args.malformed, args.valid_metrics, args.valid_logs = (
            args.malformed // 10, args.valid_metrics // 10, args.valid_logs // 10,
        )  # fmt: skip
    import redis

    benchdb.create(BENCH_DB)
    from alerting_worker.ingest.consumer import ensure_group
    from collector_server.monitoring import partitions
    from shared import streams

    partitions.ensure_ahead(days_ahead=1)
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    entries = build(args.malformed, args.valid_metrics, args.valid_logs)
    for kind, items in entries.items():
        key = streams.stream_key(kind)
        ensure_group(client, key)
        pipe = client.pipeline(transaction=False)
        for i, (_, data) in enumerate(items):
            pipe.xadd(key, {b"b": data})
            if i % 200 == 199:
                pipe.execute()
        pipe.execute()
    total = sum(len(items) for items in entries.values())
    kinds = {name for items in entries.values() for name, _ in items if name != "valid"}
    print(
        f"added {total:,} entries: {args.malformed:,} malformed of {len(kinds)} kinds, "
        f"{args.valid_metrics:,} valid metrics batches, {args.valid_logs:,} valid logs batches"
    )
    t0 = time.perf_counter()
    procs = start_workers(args.workers)
    try:
        while True:
            now = state(client)
            done = now["batches_ingested"] + now["batches_deadlettered"] >= total and not now["pending"]
            if (done and not now["lag"]) or time.perf_counter() - t0 > args.timeout:
                break
            time.sleep(0.1)
        elapsed = time.perf_counter() - t0
        alive = sum(p.poll() is None for p in procs)
    finally:
        stop(procs)
    report(client, now, elapsed, alive, args)
    benchdb.drop(BENCH_DB)


def report(client, now: dict[str, int], elapsed: float, alive: int, args: argparse.Namespace) -> None:
    from django.db import connection

    from shared import streams

    with connection.cursor() as cursor:
        cursor.execute("SELECT kind, count(*) FROM monitoring_ingestedbatch GROUP BY kind")
        stored = dict(cursor.fetchall())
        cursor.execute("SELECT count(*) FROM monitoring_sample")
        samples = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM logs_entry")
        records = cursor.fetchone()[0]
    dead = client.xrange(streams.stream_key(streams.DEAD_LETTER), count=1_000_000)
    without_reason = sum(1 for _, fields in dead if not fields.get(b"reason"))
    print(f"valid metrics batches stored: {stored.get('metrics', 0):,} of {args.valid_metrics:,} "
          f"({samples:,} samples, expected {args.valid_metrics * SERIES_PER_BATCH:,})")  # fmt: skip
    print(f"valid logs batches stored:    {stored.get('logs', 0):,} of {args.valid_logs:,} "
          f"({records:,} records, expected {args.valid_logs * RECORDS_PER_BATCH:,})")  # fmt: skip
    print(f"dead-lettered:                {len(dead):,} of {args.malformed:,} malformed "
          f"({without_reason} without a reason)")  # fmt: skip
    print(f"pending:                      {now['pending']:,} (not yet read: {now['lag']:,})")
    print(f"workers alive at the end:     {alive} of {args.workers}")
    print(f"drain time:                   {elapsed:.1f} s")


if __name__ == "__main__":
    main()
