"""Console entry points: fleetwatch-worker and fleetwatch-scheduler."""

from __future__ import annotations

import argparse
import importlib
import logging
import socket
import sys
import threading
import time
import uuid

from alerting_worker import django_setup

log = logging.getLogger("fleetwatch.worker")
LEADER_TTL = 30
LEADER_RENEW = 10


def _startup() -> None:
    django_setup.setup()
    from django.conf import settings

    from alerting_worker.redis_checks import check_redis
    from collector_server.redis_conn import get_redis, get_stream_redis

    problems = check_redis(get_redis(), settings.REDIS_SOCKET_TIMEOUT, settings.INGEST_BLOCK_MS)
    if settings.STREAM_REDIS_URL:
        problems += check_redis(get_stream_redis(), settings.REDIS_SOCKET_TIMEOUT, settings.INGEST_BLOCK_MS)
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
    from shared import redis_acl

    result = redis_acl.record_check(client, user)
    for problem in result["problems"]:
        log.error("agent Redis user %r: %s", user, problem)
    if not result["exists"]:
        log.warning(
            "agent Redis user %r: %s", user, result.get("error") or "does not exist (agents share REDIS_URL?)"
        )


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
    from alerting_worker.jobs_guard import build_worker
    from alerting_worker.queues import ALL_QUEUES, get_queue

    names = [q.strip() for q in args.queues.split(",") if q.strip()] or list(ALL_QUEUES)
    try:
        queues = [get_queue(name) for name in names]
    except ValueError as exc:
        print(f"fleetwatch-worker: --queues: {exc}", file=sys.stderr)
        return 2
    # SimpleWorker keeps the series cache and the database connection between jobs;
    # ingest jobs are long (seconds), so forking buys little and costs the cache.
    name = args.name or f"{socket.gethostname()}:{uuid.uuid4().hex[:6]}"
    worker = build_worker(queues, name=name, fork=args.fork)
    # with_scheduler: RQ parks retried jobs (a notification after a webhook 503) and jobs
    # enqueued for later in its ScheduledJobRegistry; only a worker running RQ's scheduler
    # (one per queue holds the lock, checking every second) moves them back when they are due.
    worker.work(
        burst=args.burst,
        logging_level=logging.getLevelName(logging.getLogger().level),
        with_scheduler=True,
    )
    return 0


def build_cron(connection):
    """Return an RQ CronScheduler with every entry of alerting_worker.schedule."""
    from alerting_worker.jobs_guard import GuardedCronScheduler
    from alerting_worker.schedule import SCHEDULE

    cron = GuardedCronScheduler(connection=connection)
    for entry in SCHEDULE:
        module, _, attr = entry.func.rpartition(".")
        func = getattr(importlib.import_module(module), attr)
        cron.register(func, entry.queue, interval=entry.interval, cron=entry.cron, job_timeout=entry.timeout)
    return cron


class Leadership:
    """A Redis lease so that exactly one scheduler enqueues periodic work."""

    def __init__(self, client, key: str, name: str) -> None:
        self.client, self.key, self.name = client, key, name.encode()
        self.lost = threading.Event()

    def acquire(self, wait: bool = True) -> bool:
        while not self.client.set(self.key, self.name, nx=True, ex=LEADER_TTL):
            if not wait:
                return False
            holder = self.client.get(self.key)
            log.info(
                "another scheduler (%s) holds the lease; standing by", holder.decode() if holder else "?"
            )
            time.sleep(LEADER_RENEW / 2)
        threading.Thread(target=self._renew, daemon=True).start()
        return True

    def _renew(self) -> None:
        renew = self.client.register_script(
            "if redis.call('get', KEYS[1]) == ARGV[1] then "
            "return redis.call('expire', KEYS[1], ARGV[2]) else return 0 end"
        )
        while not self.lost.is_set():
            time.sleep(LEADER_RENEW)
            try:
                if not renew(keys=[self.key], args=[self.name, LEADER_TTL]):
                    log.error("scheduler lease lost; stopping")
                    self.lost.set()
            except Exception:
                log.exception("could not renew the scheduler lease")

    def release(self) -> None:
        """Delete the lease only if this scheduler still holds it (compare and delete, atomically)."""
        self.client.eval(
            "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end",
            1,
            self.key,
            self.name,
        )


def scheduler_main(argv: list[str] | None = None) -> int:
    """Run RQ's cron scheduler with the periodic jobs; only one runs at a time (a Redis lease)."""
    parser = argparse.ArgumentParser(prog="fleetwatch-scheduler", description=scheduler_main.__doc__)
    parser.add_argument("--no-wait", action="store_true", help="exit at once if another scheduler runs")
    args = parser.parse_args(argv)
    _startup()
    from collector_server.redis_conn import get_redis
    from shared import streams

    client = get_redis()
    name = f"{socket.gethostname()}:{uuid.uuid4().hex[:6]}"
    lease = Leadership(client, f"{streams.prefix()}:scheduler:leader", name)
    if not lease.acquire(wait=not args.no_wait):
        print("fleetwatch-scheduler: another scheduler is running; exiting (--no-wait)", file=sys.stderr)
        return 1
    cron = build_cron(client)
    watchdog = threading.Thread(target=_exit_when_lost, args=(lease,), daemon=True)
    watchdog.start()
    try:
        cron.start()
    finally:
        lease.release()
    return 0


def _exit_when_lost(lease: Leadership) -> None:
    lease.lost.wait()
    import os
    import signal

    os.kill(os.getpid(), signal.SIGTERM)
