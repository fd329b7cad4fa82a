"""The periodic-job scheduler: RQ's cron scheduler behind a Redis leader lease, outliving Redis outages.

Exactly one scheduler enqueues periodic work: the one holding the lease key (SET NX with a
TTL of LEADER_TTL seconds, renewed every LEADER_RENEW seconds by compare-and-expire). A
scheduler only enqueues while its last confirmation of the lease is younger than
LEADER_TTL - LEADER_RENEW, so two schedulers never both believe they lead for long.

When Redis is unreachable the scheduler does not exit: it logs the outage once, retries with
backoff and, once Redis answers, confirms or re-takes its lease (a Redis restarted without
its data has lost the key) and re-registers in RQ's scheduler registry. If another scheduler
took the lease meanwhile, it stands by until the lease is free again.
"""

from __future__ import annotations

import importlib
import logging
import time

import redis
from rq.exceptions import StopRequested

from alerting_worker.jobs_guard import GuardedCronScheduler
from alerting_worker.resilience import REDIS_DOWN, Outage

log = logging.getLogger("fleetwatch.scheduler")
LEADER_TTL = 30
LEADER_RENEW = 10
# Renew the lease if ours, take it if nobody holds it; 1 = ours now, 0 = another scheduler's.
CLAIM_SCRIPT = (
    "local holder = redis.call('get', KEYS[1]) "
    "if holder == ARGV[1] then redis.call('expire', KEYS[1], ARGV[2]) return 1 end "
    "if not holder then redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[2]) return 1 end "
    "return 0"
)
RELEASE_SCRIPT = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
)


class Leadership:
    """A Redis lease so that exactly one scheduler enqueues periodic work."""

    def __init__(self, client: redis.Redis, key: str, name: str) -> None:
        self.client, self.key, self.name = client, key, name.encode()
        self.confirmed_at: float | None = None  # monotonic time of the last successful claim
        self.standing_by = False

    @property
    def held(self) -> bool:
        """True while the lease was confirmed recently enough that no other scheduler can hold it."""
        return (
            self.confirmed_at is not None and time.monotonic() - self.confirmed_at < LEADER_TTL - LEADER_RENEW
        )

    def due(self) -> bool:
        return self.confirmed_at is None or time.monotonic() - self.confirmed_at >= LEADER_RENEW

    def claim(self) -> bool:
        """Renew or take the lease (raises redis errors); return whether this scheduler holds it."""
        ours = bool(self.client.eval(CLAIM_SCRIPT, 1, self.key, self.name, LEADER_TTL))
        if ours:
            if self.standing_by:
                log.info("took the scheduler lease %s", self.key)
            self.confirmed_at, self.standing_by = time.monotonic(), False
        else:
            if self.confirmed_at is not None:
                log.error("scheduler lease lost to another scheduler; standing by")
            elif not self.standing_by:
                holder = self.client.get(self.key)
                log.info(
                    "another scheduler (%s) holds the lease; standing by", holder.decode() if holder else "?"
                )
            self.confirmed_at, self.standing_by = None, True
        return ours

    def release(self) -> None:
        """Delete the lease only if this scheduler still holds it (compare and delete, atomically)."""
        self.client.eval(RELEASE_SCRIPT, 1, self.key, self.name)
        self.confirmed_at = None


class LeaderCronScheduler(GuardedCronScheduler):
    """RQ's CronScheduler that enqueues only while it holds the lease and rides out Redis outages."""

    def __init__(self, connection: redis.Redis, lease: Leadership, **kwargs) -> None:
        super().__init__(connection=connection, **kwargs)
        self.lease = lease
        self.outage = Outage("Redis", log)
        self.registered = False

    def start(self) -> None:
        self.log.info("CronScheduler %s: starting...", self.name)
        self._install_signal_handlers()
        try:
            while True:
                try:
                    self._step()
                except REDIS_DOWN as exc:
                    time.sleep(self.outage.failed(exc, "scheduling"))
        except (KeyboardInterrupt, StopRequested):
            self.log.info("CronScheduler %s: stop requested", self.name)
        finally:
            self._leave()

    def _step(self) -> None:
        if self.lease.due() or not self.lease.held:
            self.lease.claim()
        recovering = self.outage.active
        if self.lease.held and (recovering or not self.registered):
            self.register_birth()  # again after an outage: a Redis restarted without its data lost it
            self.registered = True
        elif not self.lease.held and self.registered:
            self.register_death()  # a standby scheduler is not counted as running
            self.registered = False
        if recovering:
            self.outage.recovered(f"lease held: {self.lease.held}")
        if self.lease.held:
            if self.enqueue_jobs():
                self.save()
            self.heartbeat()
            pause = min(self.calculate_sleep_interval(), LEADER_RENEW / 2)
        else:
            pause = LEADER_RENEW / 2
        if pause > 0:
            time.sleep(pause)

    def _leave(self) -> None:
        try:
            if self.registered:
                self.register_death()
            self.lease.release()
        except REDIS_DOWN as exc:
            log.warning(
                "could not release the scheduler lease (Redis unreachable: %s); it expires by itself", exc
            )
        self.log.info("CronScheduler %s: shutdown complete", self.name)


def build_cron(connection: redis.Redis, lease: Leadership, name: str = "") -> LeaderCronScheduler:
    """Return a LeaderCronScheduler with every entry of alerting_worker.schedule."""
    from alerting_worker.schedule import SCHEDULE

    cron = LeaderCronScheduler(connection, lease, name=name)
    for entry in SCHEDULE:
        module, _, attr = entry.func.rpartition(".")
        func = getattr(importlib.import_module(module), attr)
        cron.register(func, entry.queue, interval=entry.interval, cron=entry.cron, job_timeout=entry.timeout)
    return cron
