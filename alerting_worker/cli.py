"""Console entry points: fleetwatch-worker and fleetwatch-scheduler."""

from __future__ import annotations

import argparse
import logging
import socket
import sys
import time
import uuid

from alerting_worker import django_setup

log = logging.getLogger("fleetwatch.worker")


def _startup() -> None:
    django_setup.setup()
    from django.conf import settings

    from collector_server.redis_conn import get_redis, get_stream_redis

    problems = _redis_problems_when_reachable(get_redis(), settings)
    if settings.STREAM_REDIS_URL:
        problems += _redis_problems_when_reachable(get_stream_redis(), settings)
    for problem in problems:
        log.error("redis check: %s", problem)
    if problems and not settings.ALLOW_REDIS_EVICTION:
        print(
            "fleetwatch: refusing to start: "
            + "; ".join(problems)
            + " (FLEETWATCH_ALLOW_REDIS_EVICTION=true starts anyway)",
            file=sys.stderr,
        )
        raise SystemExit(2)
    _check_agent_acl(get_stream_redis(), settings.REDIS_AGENT_USER)


def _check_agent_acl(client, user: str) -> None:
    """Verify that the agents' Redis user may only XADD; the health endpoint reports the result."""
    from collector_server.redis_conn import stream_shards
    from shared import redis_acl

    result = redis_acl.record_check(client, user, shards=stream_shards())
    for problem in result["problems"]:
        log.error("agent Redis user %r: %s", user, problem)
    if not result["exists"]:
        log.warning(
            "agent Redis user %r: %s", user, result.get("error") or "does not exist (agents share REDIS_URL?)"
        )


def _redis_problems_when_reachable(client, settings) -> list[str]:
    """Check Redis's settings, waiting (with backoff, logged once) while Redis is unreachable."""
    from alerting_worker.redis_checks import check_durability, check_redis
    from alerting_worker.resilience import REDIS_DOWN, Outage

    outage = Outage("Redis", log)
    while True:
        try:
            problems = check_redis(client, settings.REDIS_SOCKET_TIMEOUT, settings.INGEST_BLOCK_MS)
            warnings = check_durability(client, allow_volatile=settings.ALLOW_VOLATILE_REDIS)
            break
        except REDIS_DOWN as exc:
            time.sleep(outage.failed(exc, "starting"))
    outage.recovered()
    for warning in warnings:
        log.warning("redis check: %s", warning)
    return problems


def worker_main(argv: list[str] | None = None) -> int:
    """Run an RQ worker on the named queues (all by default)."""
    parser = argparse.ArgumentParser(prog="fleetwatch-worker", description=worker_main.__doc__)
    parser.add_argument(
        "--queues", default="", help="comma-separated queues (default: all, in priority order)"
    )
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--fork", action="store_true", help="fork a work horse per job (RQ's Worker)")
    parser.add_argument("--name", default="", help="worker name (default host:pid)")
    args = parser.parse_args(argv)
    _startup()
    from alerting_worker.ingest.jobs import flush_summary_at_exit
    from alerting_worker.queues import ALL_QUEUES, get_queue
    from alerting_worker.resilience import OutageTolerantSimpleWorker, OutageTolerantWorker
    from alerting_worker.routine_logs import quiet_routine_jobs

    names = [q.strip() for q in args.queues.split(",") if q.strip()] or list(ALL_QUEUES)
    try:
        queues = [get_queue(name) for name in names]
    except ValueError as exc:
        print(f"fleetwatch-worker: --queues: {exc}", file=sys.stderr)
        return 2
    # SimpleWorker keeps the series cache and the database connection between jobs;
    # ingest jobs are long (seconds), so forking buys little and costs the cache.
    # The outage-tolerant classes ride out Redis and Postgres outages (alerting_worker.resilience).
    worker_class = OutageTolerantWorker if args.fork else OutageTolerantSimpleWorker
    name = args.name or f"{socket.gethostname()}:{uuid.uuid4().hex[:6]}"
    worker = worker_class(queues, connection=queues[0].connection, name=name)
    worker.log_result_lifespan = False  # "result is kept for 500 seconds" after every job
    quiet_routine_jobs()  # ingest drains log at DEBUG; alerting_worker.ingest.jobs sums them up
    flush_summary_at_exit()
    from collector_server.gc_tuning import freeze_startup_objects

    freeze_startup_objects()  # the series caches grow later and stay collectable
    # with_scheduler: RQ parks retried jobs (a notification after a webhook 503) and jobs
    # enqueued for later in its ScheduledJobRegistry; only a worker running RQ's scheduler
    # (one per queue holds the lock, checking every second) moves them back when they are due.
    worker.work(
        burst=args.burst,
        logging_level=logging.getLevelName(logging.getLogger().level),
        with_scheduler=True,
    )
    return 0


def scheduler_main(argv: list[str] | None = None) -> int:
    """Run RQ's cron scheduler with the periodic jobs; only one runs at a time (a Redis lease)."""
    parser = argparse.ArgumentParser(prog="fleetwatch-scheduler", description=scheduler_main.__doc__)
    parser.add_argument("--no-wait", action="store_true", help="exit at once if another scheduler runs")
    args = parser.parse_args(argv)
    _startup()
    from alerting_worker.leader import Leadership, build_cron
    from collector_server.redis_conn import get_redis
    from shared import streams

    client = get_redis()
    name = f"{socket.gethostname()}:{uuid.uuid4().hex[:6]}"
    lease = Leadership(client, f"{streams.prefix()}:scheduler:leader", name)
    if args.no_wait and not lease.claim():
        print("fleetwatch-scheduler: another scheduler is running; exiting (--no-wait)", file=sys.stderr)
        return 1
    from alerting_worker.routine_logs import quiet_routine_jobs

    quiet_routine_jobs("rq.cron")
    # Enqueues only while it holds the lease; stands by otherwise; outlives Redis outages.
    build_cron(client, lease, name=name).start()
    return 0
