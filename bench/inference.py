"""LLM inference figures: SDK overhead per record, records/s to Postgres, models endpoint latency.

    DEBUG=true .venv/bin/python bench/inference.py [--seconds 5] [--workers 2] [--runs 40] [--models 20]

1. SDK overhead: CPU µs per ``InferenceRecorder.record`` (aggregation in memory; median over
   rounds), without and with the per-inference log record (request id given, JSON formatter to a
   null stream).
2. Records/s through a real agent (its own socket), the metrics stream and WORKERS real worker
   processes into Postgres: this process records inferences for ``--seconds`` over 20 models x 5
   organisations (flush every second), then waits until the stored ``llm_requests_total`` counters
   sum to every record; the figure is records / seconds from the first record to that moment.
3. ``GET /api/v1/monitoring/models?hours=168`` (7 days, ``--models`` models) p50/p95 over
   ``--runs`` calls through Django's test client, on 1-hour rollups for 7 days plus raw samples
   (every 10 s) since the last computed hour.

Uses its own database (fleetwatch_bench_inference, dropped at the end) and Redis db 13 (or
FLEETWATCH_BENCH_REDIS_DB, flushed).
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import benchdb  # bench/ is the script directory, so it is on sys.path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "fleetwatch_bench_inference"
REDIS_URL = f"redis://127.0.0.1:6379/{os.environ.get('FLEETWATCH_BENCH_REDIS_DB', '13')}"
os.environ.update(
    DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}",
    REDIS_URL=REDIS_URL,
    FLEETWATCH_STREAM_PREFIX="fwbench-inf",
    SECRET_KEY="bench",
    DEBUG="true",
    DJANGO_SETTINGS_MODULE="collector_server.settings",
    LOG_LEVEL="WARNING",
    INGEST_BLOCK_MS="500",
    FLEETWATCH_REQUIRE_SIGNED_BATCHES="false",
    FLEETWATCH_ALLOW_VOLATILE_REDIS="true",
)


class NullStream(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)


def sdk_overhead(records: int = 20_000, rounds: int = 7) -> dict[str, float]:
    from agent.sdk import InferenceRecorder, JSONFormatter

    def per_call(with_log: bool) -> float:
        logger = logging.getLogger(f"bench.inference.{with_log}")
        logger.propagate = False
        logger.handlers.clear()
        if with_log:
            handler = logging.StreamHandler(NullStream())
            handler.setFormatter(JSONFormatter())
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
        recorder = InferenceRecorder("bench", client=None, logger=logger)
        models = [f"model-{i}" for i in range(20)]
        samples = []
        recorder.record("warm-up", 0.1)
        for _ in range(rounds):
            t0 = time.process_time_ns()
            for i in range(records):
                recorder.record(
                    models[i % 20],
                    0.35,
                    input_tokens=812,
                    output_tokens=95,
                    organization="acme",
                    time_to_first_token=0.08,
                    request_id="req-1" if with_log else None,
                )
            samples.append((time.process_time_ns() - t0) / records / 1000)
        assert recorder.errors == 0 and recorder.metrics.recorded == records * rounds + 1
        return statistics.median(samples)

    return {"record_us": per_call(False), "record_with_log_us": per_call(True)}


def start_agent(tmp: Path) -> tuple[subprocess.Popen, str]:
    socket_path = str(tmp / "agent.sock")
    env = dict(
        os.environ,
        FLEETWATCH_AGENT_SOCKET=socket_path,
        FLEETWATCH_AGENT_STATE_DIR=str(tmp / "agent"),
        LOG_FORMAT="text",
    )
    with open(tmp / "agent.log", "wb") as log:  # the child keeps its own copy
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent", "--interval", "1"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.time() + 30
    while not os.path.exists(socket_path):
        if proc.poll() is not None or time.time() > deadline:
            raise SystemExit(f"the agent did not open its socket: {(tmp / 'agent.log').read_text()[-2000:]}")
        time.sleep(0.1)
    return proc, socket_path


def start_workers(workers: int) -> list[subprocess.Popen]:
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
    time.sleep(3)
    return procs


def stored_requests() -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(v), 0) FROM (SELECT DISTINCT ON (s.series_id) s.value AS v FROM monitoring_sample s "
            "JOIN monitoring_series m ON m.id = s.series_id WHERE m.name = 'llm_requests_total' "
            "ORDER BY s.series_id, s.ts DESC) x"
        )
        return float(cursor.fetchone()[0])


def pipeline(seconds: float, workers: int) -> dict[str, float]:
    from agent.sdk import AgentClient, InferenceRecorder

    with tempfile.TemporaryDirectory() as tmp:
        procs = start_workers(workers)
        agent, socket_path = start_agent(Path(tmp))
        try:
            client = AgentClient(socket_path)
            recorder = InferenceRecorder("bench", client=client, flush_interval=1.0)
            models = [f"model-{i}" for i in range(20)]
            orgs = [f"org-{i}" for i in range(5)]
            count = 0
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                for i in range(1000):
                    recorder.record(models[i % 20], 0.35, input_tokens=800, output_tokens=90,
                                    organization=orgs[i % 5], time_to_first_token=0.07)  # fmt: skip
                count += 1000
            recording = time.perf_counter() - t0
            recorder.close()
            client.close()
            deadline = time.time() + 120
            while stored_requests() < count:
                if time.time() > deadline:
                    raise SystemExit(f"only {stored_requests():.0f} of {count} records stored after 120 s")
                time.sleep(0.05)
            total = time.perf_counter() - t0
        finally:
            agent.terminate()
            agent.wait(timeout=15)
            for proc in procs:
                proc.kill()  # a warm shutdown would wait for the hour-long drain job
                proc.wait(timeout=15)
    return {"records": count, "recording_s": recording, "total_s": total, "records_per_s": count / total}


def seed_models(models: int, days: int = 7) -> int:
    """1-hour rollups for `days` days and raw samples every 10 s since the last whole hour."""
    from django.contrib.auth.models import User
    from django.db import connection

    from collector_server.monitoring import partitions
    from collector_server.monitoring.models import Host, RollupState, Series
    from shared import inference as c

    with connection.cursor() as cursor:  # the pipeline's series out of the way: exactly `models` models
        cursor.execute("TRUNCATE monitoring_sample, monitoring_rollup_1m, monitoring_rollup_1h")
        cursor.execute("DELETE FROM monitoring_series")
    now = datetime.now(UTC).replace(microsecond=0)
    hour = now.replace(minute=0, second=0)
    start = hour - timedelta(days=days)
    day = start.date()
    while day <= now.date():
        for spec in partitions.REGISTRY.values():
            partitions.ensure_partition(spec, day)
        day += timedelta(days=1)
    from tests.members import member

    member(User.objects.create_user("bench", password="bench-password-1"), "viewer")
    host = Host.objects.create(agent_id="agent-gpu-1", hostname="gpu-1", last_seen=now)
    rates: list[tuple[int, float]] = []  # (series id, increase per second)
    for m in range(models):
        base = {
            "model": f"model-{m:02d}",
            "organization": "acme",
            "host": "gpu-1",
            "service": "chat",
            "instance": "i1",
        }
        specs = [(c.REQUESTS, {"status": "ok"}, 5.0), (c.REQUESTS, {"status": "error"}, 0.1)]
        for name, buckets in ((c.DURATION, c.DURATION_BUCKETS), (c.TTFT, c.TTFT_BUCKETS)):
            for i, le in enumerate(c.bucket_labels(buckets)):
                specs.append((name + "_bucket", {"le": le}, 5.0 * min(1.0, (i + 1) / 6)))
            specs += [(name + "_sum", {}, 2.0), (name + "_count", {}, 5.0)]
        specs += [(c.INPUT_TOKENS, {}, 4000.0), (c.OUTPUT_TOKENS, {}, 500.0), (c.COST, {}, 0.01),
                  (c.UNPRICED_INPUT_TOKENS, {}, 100.0), (c.UNPRICED_OUTPUT_TOKENS, {}, 10.0)]  # fmt: skip
        for name, extra, rate in specs:
            labels = {**base, **extra}
            key = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
            series = Series.objects.create(
                name=name, kind="counter", labels=labels, labels_key=key, host=host
            )
            rates.append((series.id, rate))
    hours = days * 24
    rollups = io.StringIO()
    minutes = io.StringIO()
    raw = io.StringIO()
    minute_mark = now.replace(second=0) - timedelta(minutes=1)  # the 1 min job runs a minute behind
    for sid, rate in rates:
        for h in range(hours):
            bucket = start + timedelta(hours=h)
            last = rate * 3600 * (h + 1)
            rollups.write(
                f"{sid}\t{bucket.isoformat()}\t{last - rate * 3600}\t{last}\t{last}\t1\t{last}\t{rate * 3600}\n"
            )
        base = rate * 3600 * hours
        for k in range(int((minute_mark - hour).total_seconds() // 60)):
            bucket = hour + timedelta(minutes=k)
            last = base + rate * 60 * (k + 1)
            minutes.write(
                f"{sid}\t{bucket.isoformat()}\t{last - rate * 60}\t{last}\t{last}\t1\t{last}\t{rate * 60}\n"
            )
        for k in range(int((now - hour).total_seconds() // 10) + 1):
            ts = hour + timedelta(seconds=10 * k)
            raw.write(f"{sid}\t{ts.isoformat()}\t{base + rate * 10 * k}\n")
    columns = "(series_id, bucket, min, max, sum, count, last, increase)"
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY monitoring_rollup_1h {columns} FROM STDIN") as copy:
            copy.write(rollups.getvalue())
        with cursor.copy(f"COPY monitoring_rollup_1m {columns} FROM STDIN") as copy:
            copy.write(minutes.getvalue())
        with cursor.copy("COPY monitoring_sample (series_id, ts, value) FROM STDIN") as copy:
            copy.write(raw.getvalue())
        cursor.execute("ANALYZE")
    RollupState.objects.update_or_create(level="1h", defaults={"done_until": hour})
    RollupState.objects.update_or_create(level="1m", defaults={"done_until": minute_mark})
    return len(rates)


def models_endpoint(models: int, runs: int) -> dict[str, float]:
    from django.contrib.auth.models import User
    from django.test import Client

    series = seed_models(models)
    client = Client()
    client.force_login(User.objects.get(username="bench"))
    from collector_server.gc_tuning import freeze_startup_objects

    freeze_startup_objects()  # as the server's wsgi module does when a gunicorn worker starts
    durations = []
    body = None
    for _ in range(runs + 3):
        t0 = time.perf_counter()
        response = client.get("/api/v1/monitoring/models?hours=168")
        durations.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, response.content[:300]
        body = response.json()
    durations = durations[3:]  # warm-up
    if os.environ.get("BENCH_PROFILE"):
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        client.get("/api/v1/monitoring/models?hours=168")
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    assert body is not None and body["count"] == models, body
    durations.sort()
    p95 = durations[min(len(durations) - 1, round(0.95 * len(durations)) - 1)]
    return {"series": series, "p50_ms": statistics.median(durations), "p95_ms": p95}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--only-read", action="store_true", help="only the models endpoint figure")
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    parser.add_argument("--profile", action="store_true", help="print where one models call spends its time")
    args = parser.parse_args()

    if args.profile:
        os.environ["BENCH_PROFILE"] = "1"
    if not args.only_read:
        overhead = sdk_overhead()
        print(f"SDK record_inference: median {overhead['record_us']:.2f} µs CPU per record "
          f"({overhead['record_with_log_us']:.2f} µs with the per-inference log record)  [goal <= 20 µs]")  # fmt: skip

    benchdb.create(BENCH_DB)
    try:
        from collector_server.monitoring import partitions

        partitions.ensure_ahead(days_ahead=1)
        if not args.only_read:
            flow = pipeline(args.seconds, args.workers)
            print(f"agent -> stream -> Postgres, {args.workers} workers: {flow['records']:,} records in "
              f"{flow['total_s']:.2f} s (recording {flow['recording_s']:.2f} s) = "
              f"{flow['records_per_s']:,.0f} records/s stored  [goal >= 50,000/s]")  # fmt: skip
        read = models_endpoint(args.models, args.runs)
        print(f"GET models?hours=168, {args.models} models ({read['series']} series): "
              f"p50 {read['p50_ms']:.1f} ms, p95 {read['p95_ms']:.1f} ms over {args.runs} calls  [goal p95 <= 50 ms]")  # fmt: skip
    finally:
        if not args.keep:
            benchdb.drop(BENCH_DB)


if __name__ == "__main__":
    main()
