"""Keep the worker and the scheduler running through Redis and Postgres outages.

An outage is logged twice: once when it starts (WARNING, with the error) and once when the
dependency answers again (INFO, with how long it was gone); the tries in between log at DEBUG.
Between tries the process sleeps with capped exponential backoff (RECONNECT_MAX_SECONDS).

`OutageTolerantWorker` wraps the points where RQ's work loop talks to Redis outside its own
retry (the job's execution and the bookkeeping around it, the heartbeat, maintenance, the
suspension check, the teardown): a lost connection there used to end the process ("found an
unhandled exception, quitting") and leave its registration behind. It waits for Redis, puts
its registration back if Redis lost it, and goes on. A job that fails because Postgres is
unreachable is recorded as failed as usual, logged once per outage, and the next job starts
on a fresh database connection.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import redis
from rq import worker_registration
from rq.job_lifecycle import call_exception_handlers
from rq.scheduler import RQScheduler
from rq.worker import WorkerStatus

from alerting_worker.jobs_guard import GuardedSimpleWorker, GuardedWorker

log = logging.getLogger("fleetwatch.worker")
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)
FIRST_DELAY_SECONDS = 0.25
DEFAULT_MAX_DELAY_SECONDS = 5.0


def max_delay() -> float:
    from django.conf import settings

    return float(getattr(settings, "RECONNECT_MAX_SECONDS", DEFAULT_MAX_DELAY_SECONDS))


def database_down(exc: BaseException | None) -> bool:
    """Whether `exc` (or its cause) means Postgres could not be reached, not that a query was wrong."""
    from django.db import utils as db_utils

    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, db_utils.OperationalError | db_utils.InterfaceError):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


class Outage:
    """One dependency's outage: log its start and end once, and space the tries out."""

    def __init__(self, what: str, logger: logging.Logger = log, max_delay_seconds: float | None = None):
        self.what = what
        self.logger = logger
        self.max_delay_seconds = max_delay_seconds
        self.since: float | None = None
        self.tries = 0

    @property
    def active(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException, doing: str = "") -> float:
        """Record a failed try; return how long to wait before the next one."""
        self.tries += 1
        if self.since is None:
            self.since = time.monotonic()
            self.logger.warning(
                "%s is unreachable%s (%s: %s); retrying with backoff, logging again when it is back",
                self.what,
                f" while {doing}" if doing else "",
                type(exc).__name__,
                str(exc).strip() or "no detail",
            )
        else:
            self.logger.debug("%s still unreachable (try %d): %s", self.what, self.tries, exc)
        cap = self.max_delay_seconds if self.max_delay_seconds is not None else max_delay()
        delay = min(cap, FIRST_DELAY_SECONDS * 2 ** min(self.tries - 1, 16))
        return delay * random.uniform(0.8, 1.0)

    def recovered(self, note: str = "") -> float | None:
        """Log the end of the outage (if one was open); return how long it lasted."""
        if self.since is None:
            return None
        lasted = time.monotonic() - self.since
        self.logger.warning(
            "%s is back after %.1fs (%d tries)%s", self.what, lasted, self.tries, f"; {note}" if note else ""
        )
        self.since, self.tries = None, 0
        return lasted


def wait_for_redis(
    client: redis.Redis,
    outage: Outage,
    first_error: BaseException,
    doing: str = "",
    stop: Callable[[], bool] | None = None,
) -> bool:
    """Sleep with backoff until `client` answers PING; False when `stop()` asked to give up first."""
    exc: BaseException = first_error
    while True:
        time.sleep(outage.failed(exc, doing))
        if stop is not None and stop():
            return False
        try:
            client.ping()
            return True
        except REDIS_DOWN as again:
            exc = again


class RetryNoiseFilter(logging.Filter):
    """RQ logs an ERROR on every retry of its dequeue; our Outage logs the outage once instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "could not connect to Redis instance" not in str(record.msg):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


class OutageTolerantRQScheduler(RQScheduler):
    """RQ's scheduler process (moves retried and delayed jobs back when due), outliving Redis outages.

    RQ's own loop dies on the first connection error and a worker restarts it only at its next
    maintenance run (10 minutes): retries would wait that long.
    """

    def work(self) -> None:
        self._install_signal_handlers()
        outage = Outage("Redis", logging.getLogger("rq.scheduler"))
        registered = False
        while not self._stop_requested:
            try:
                if not registered:
                    self.register_birth()  # again after an outage: Redis may have lost it
                    registered = True
                if self.should_reacquire_locks:
                    self.acquire_locks()
                self.heartbeat()
                self.enqueue_scheduled_jobs()
                outage.recovered()
                time.sleep(self.interval)
            except REDIS_DOWN as exc:
                registered = False
                time.sleep(outage.failed(exc, "moving due jobs back to their queues"))
        with contextlib.suppress(*REDIS_DOWN):
            self.stop()  # when Redis is down, the locks and the registration expire by themselves


class OutageTolerantMixin:
    """RQ worker behaviour that outlives Redis and Postgres outages (see the module docstring)."""

    connection: redis.Redis
    name: str
    _stop_requested: bool

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.redis_outage = Outage("Redis")
        self.database_outage = Outage("Postgres")
        rq_log = logging.getLogger("rq.worker")
        if not any(isinstance(f, RetryNoiseFilter) for f in rq_log.filters):
            rq_log.addFilter(RetryNoiseFilter())

    # -- Redis -------------------------------------------------------------------------------
    def _ride_out(self, exc: BaseException, doing: str) -> None:
        """Wait for Redis to return, then put the registration back; raise StopRequested on SIGTERM."""
        from rq.exceptions import StopRequested

        self._state = WorkerStatus.IDLE  # a stop signal during the wait must not try to reach Redis
        while True:
            if not wait_for_redis(
                self.connection, self.redis_outage, exc, doing, lambda: self._stop_requested
            ):
                raise StopRequested()
            try:
                self._reregister()
                break
            except REDIS_DOWN as again:  # Redis went away again between PING and the registration
                exc = again
        self.redis_outage.recovered(f"worker {self.name} registered again")

    def _reregister(self) -> None:
        """Restore this worker's hash and its place in the worker sets (Redis may have lost them)."""
        with self.connection.pipeline() as pipe:
            pipe.hset(self.key, mapping=self.serialize())
            worker_registration.register(self, pipe)
            pipe.expire(self.key, self.worker_ttl + 60)
            pipe.hset(self.key, "state", WorkerStatus.IDLE)
            pipe.execute()
        self._restart_scheduler()

    def _guarded(self, doing: str, call: Callable[[], Any]) -> Any:
        while True:
            try:
                return call()
            except REDIS_DOWN as exc:
                self._ride_out(exc, doing)

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        if pipeline is not None:  # part of a caller's transaction: the caller handles errors
            super().heartbeat(timeout, pipeline)  # type: ignore[misc]
            return
        self._guarded("sending the heartbeat", lambda: super(OutageTolerantMixin, self).heartbeat(timeout))
        if self.redis_outage.active:  # noticed elsewhere (a failed job), over before a wait began
            self._guarded("registering again", self._reregister)
            self.redis_outage.recovered(f"worker {self.name} registered again")
        elif not self._guarded("checking the registration", self._registered):
            # Redis restarted without its data so quickly that redis-py's own retry hid it from
            # this worker (idle in a blocking read): nothing failed, but the registration is gone.
            self._guarded("registering again", self._reregister)
            logging.getLogger("rq.worker").warning(
                "worker %s: its registration was gone from Redis (restarted without its data?); registered again",
                self.name,
            )

    def _registered(self) -> bool:
        return bool(self.connection.sismember(worker_registration.REDIS_WORKER_KEYS, self.key))

    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        """RQ's start (registration, command channel), waiting for Redis when it is unreachable."""
        from rq.exceptions import StopRequested

        while True:
            try:
                super().bootstrap(*args, **kwargs)  # type: ignore[misc]
                break
            except REDIS_DOWN as exc:
                if not wait_for_redis(
                    self.connection, self.redis_outage, exc, "starting", lambda: self._stop_requested
                ):
                    raise StopRequested() from None
                self.connection.delete(self.key)  # our own half-written registration (the name is unique)
        self.redis_outage.recovered()

    def check_for_suspension(self, burst: bool) -> None:
        self._guarded(
            "checking for suspension", lambda: super(OutageTolerantMixin, self).check_for_suspension(burst)
        )

    def run_maintenance_tasks(self) -> None:
        self._guarded(
            "cleaning RQ's registries", lambda: super(OutageTolerantMixin, self).run_maintenance_tasks()
        )

    def execute_job(self, job: Any, queue: Any) -> None:
        """Run the job; Redis lost mid-job ends the job (RQ's registry cleanup records it), not the worker."""
        self._fresh_database_connection()
        try:
            super().execute_job(job, queue)  # type: ignore[misc]
        except REDIS_DOWN as exc:
            self._wait_for_horse()
            log.info("job %s was interrupted by the Redis outage; RQ marks it abandoned", job.id)
            self._ride_out(exc, f"finishing job {job.id}")
        self._check_database_back()

    def _pubsub_exception_handler(self, exc: Exception, pubsub: Any, pubsub_thread: Any) -> None:
        """RQ's command channel: retry quietly (RQ logs an error every 2 s); the work loop logs the outage."""
        if isinstance(exc, redis.ConnectionError):
            log.debug("command channel: %s; retrying in 2s", exc)
            time.sleep(2.0)
            return
        super()._pubsub_exception_handler(exc, pubsub, pubsub_thread)  # type: ignore[misc]

    def teardown(self) -> None:
        try:
            super().teardown()  # type: ignore[misc]
        except REDIS_DOWN as exc:
            log.warning(
                "could not deregister worker %s (Redis unreachable: %s); its registration expires by itself",
                self.name,
                exc,
            )

    def _start_scheduler(
        self, burst: bool = False, logging_level: Any = "INFO", *args: Any, **kwargs: Any
    ) -> None:
        """RQ's _start_scheduler with the outage-tolerant scheduler class."""
        self.scheduler = OutageTolerantRQScheduler(
            self.queues,  # type: ignore[attr-defined]
            connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,  # type: ignore[attr-defined]
            serializer=self.serializer,  # type: ignore[attr-defined]
        )
        try:
            self.scheduler.acquire_locks()
        except REDIS_DOWN as exc:  # started after the outage, once the worker is registered again
            self.redis_outage.failed(exc, "starting RQ's scheduler")
            return
        if not self.scheduler.acquired_locks:
            return
        if burst:
            try:
                self.scheduler.register_birth()
                self.scheduler.enqueue_scheduled_jobs()
            finally:
                self.scheduler.release_locks()
                self.scheduler.register_death()
        else:
            self.scheduler.start()

    def _restart_scheduler(self) -> None:
        scheduler = getattr(self, "scheduler", None)
        if scheduler is not None and (not scheduler._process or not scheduler._process.is_alive()):
            scheduler.acquire_locks(auto_start=True)

    # -- Postgres ----------------------------------------------------------------------------
    def handle_exception(self, job: Any, *exc_info: Any) -> None:
        exc = exc_info[1] if len(exc_info) > 1 else None
        if not (database_down(exc) or isinstance(exc, REDIS_DOWN)):
            super().handle_exception(job, *exc_info)  # type: ignore[misc]
            return
        outage = self.redis_outage if isinstance(exc, REDIS_DOWN) else self.database_outage
        outage.failed(exc, f"running {getattr(job, 'func_name', job.id)}")  # once per outage
        call_exception_handlers(self._exc_handlers, job, *exc_info)  # type: ignore[attr-defined]

    def _fresh_database_connection(self) -> None:
        from django.db import close_old_connections, connection

        if connection.in_atomic_block:  # a burst worker inside a test's transaction: keep it
            return
        close_old_connections()  # drops a connection that failed or that Postgres closed

    def _check_database_back(self) -> None:
        if not self.database_outage.active:
            return
        from django.db import close_old_connections, connection

        close_old_connections()  # a connection broken by the outage is replaced, not reused
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except Exception:  # still down: stay quiet, the next job tries again
            connection.close()
            return
        self.database_outage.recovered()

    def _wait_for_horse(self) -> None:
        if getattr(self, "_horse_pid", 0):
            with contextlib.suppress(OSError):
                self.wait_for_horse()  # type: ignore[attr-defined]


class OutageTolerantSimpleWorker(OutageTolerantMixin, GuardedSimpleWorker):
    """RQ's SimpleWorker (jobs in the worker process) that outlives Redis and Postgres outages."""


class OutageTolerantWorker(OutageTolerantMixin, GuardedWorker):
    """RQ's forking Worker that outlives Redis and Postgres outages."""
