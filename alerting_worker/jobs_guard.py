"""RQ jobs that cannot be forged into code: a JSON serializer and an allow-list of functions.

RQ's default serializer is pickle, and its Job imports and calls whatever dotted name a
job carries. Anyone who can write to the RQ Redis could then run code in the workers
(`HSET rq:job:<id>` + `RPUSH rq:queue:ingest`). Here:

- every queue, worker and the cron scheduler use ``JSONSerializer``: a pickled job is
  never unpickled (its data fails to decode as JSON);
- ``GuardedJob.func`` checks the job's function name against ``ALLOWED_FUNCTIONS`` before
  anything is imported; callbacks and webhooks named by a job are never used.

A refused job raises ``ForbiddenJob``: the worker marks it failed (RQ's FailedJobRegistry),
it is logged and counted as ``jobs_refused`` in the stats hash
(``fleetwatch_jobs_refused_total`` on /metrics).
"""

from __future__ import annotations

import logging
from typing import Any

from redis import Redis
from rq import Queue, SimpleWorker, Worker, cron_job_registry
from rq.cron import CronJob, CronScheduler
from rq.defaults import DEFAULT_CRON_JOB_HISTORY_LIMIT, DEFAULT_CRON_JOB_HISTORY_TTL
from rq.exceptions import DeserializationError
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.utils import import_attribute

from shared import streams

log = logging.getLogger("fleetwatch.jobs")
SERIALIZER = JSONSerializer
REFUSED_COUNTER = "jobs_refused"

# Every function a fleetwatch job may name. Anything else is refused before it is imported.
ALLOWED_FUNCTIONS = frozenset(
    {
        "alerting_worker.ingest.jobs.drain",
        "alerting_worker.ingest.jobs.drain_metrics",
        "alerting_worker.ingest.jobs.drain_logs",
        "alerting_worker.ingest.alert_trigger.evaluate_ingested",
        "alerting_worker.maintenance.rollups.run_rollups",
        "alerting_worker.maintenance.upkeep.create_partitions",
        "alerting_worker.maintenance.upkeep.enforce_retention",
        "alerting_worker.maintenance.upkeep.trim_streams",
        "collector_server.logs.deferred_index.build_closed",
        "alerting_worker.alerting.jobs.evaluate_and_dispatch",
        "alerting_worker.alerting.jobs.evaluate_metrics",
        "alerting_worker.alerting.jobs.dispatch_only",
        "alerting_worker.alerting.jobs.deliver_notification",
        "alerting_worker.alerting.jobs.sweep_outbox",
        "alerting_worker.alerting.notify_test.deliver_test",
        "collector_server.ui.fleet.refresh_default_sparklines",
    }
)


class ForbiddenJob(Exception):
    """A job names a function outside the allow-list, or cannot be read as JSON."""


def refuse(job: Job, reason: str) -> ForbiddenJob:
    """Log and count a refused job; return the exception to raise."""
    log.error("refused job %s on queue %r: %s", job.id, job.origin, reason)
    try:
        job.connection.hincrby(streams.stats_key(), REFUSED_COUNTER, 1)
    except Exception:  # counting must not turn a refusal into a crash
        log.exception("could not count refused job %s", job.id)
    return ForbiddenJob(reason)


class GuardedJob(Job):
    """A Job that runs only allow-listed functions and never imports callbacks it names."""

    _refused = False

    def _deserialize_data(self) -> None:
        try:
            super()._deserialize_data()
        except DeserializationError:
            if not self._refused:  # the worker reads func_name several times; count once
                self._refused = True
                refuse(self, "job data is not JSON (a pickled or forged job)")
            raise

    @property
    def func(self) -> Any:
        try:
            name = self.func_name
            instance = self.instance
        except DeserializationError:
            raise ForbiddenJob("job data is not JSON") from None
        if not isinstance(name, str) or name not in ALLOWED_FUNCTIONS:
            raise refuse(self, f"function {name!r} is not in the allow-list")
        if instance is not None:
            raise refuse(self, f"function {name!r} called on an instance")
        return import_attribute(name)

    # Callbacks and webhooks are named by the job's hash; fleetwatch uses none, so a forged
    # one is ignored instead of imported or called.
    @property
    def success_callback(self) -> None:
        return None

    @property
    def failure_callback(self) -> None:
        return None

    @property
    def stopped_callback(self) -> None:
        return None

    def send_webhooks(self, *args: Any, **kwargs: Any) -> None:
        return None


def get_queue(name: str, connection: Redis) -> Queue:
    """Return queue `name` with the JSON serializer and the guarded job class."""
    return Queue(name, connection=connection, serializer=SERIALIZER, job_class=GuardedJob)


def build_worker(queues: list[Queue], *, name: str, fork: bool = False) -> Worker | SimpleWorker:
    """Return a worker that reads jobs as JSON and runs only allow-listed functions."""
    from alerting_worker.resilience import OutageTolerantSimpleWorker, OutageTolerantWorker

    worker_class = OutageTolerantWorker if fork else OutageTolerantSimpleWorker
    return worker_class(queues, connection=queues[0].connection, name=name)


class GuardedSimpleWorker(SimpleWorker):
    job_class = GuardedJob

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("serializer", SERIALIZER)
        kwargs.setdefault("job_class", GuardedJob)
        super().__init__(*args, **kwargs)


class GuardedWorker(Worker):
    job_class = GuardedJob

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("serializer", SERIALIZER)
        kwargs.setdefault("job_class", GuardedJob)
        super().__init__(*args, **kwargs)


class GuardedCronJob(CronJob):
    """A CronJob that enqueues with the JSON serializer (rq.cron builds a plain Queue)."""

    def enqueue(self, connection: Redis) -> Job:
        if self.func_name not in ALLOWED_FUNCTIONS:
            raise ValueError(f"{self.func_name} is not in alerting_worker.jobs_guard.ALLOWED_FUNCTIONS")
        queue = get_queue(self.queue_name, connection)
        with connection.pipeline() as pipeline:
            job = queue.enqueue(
                self.func, args=self.args, kwargs=self.kwargs, **self.job_options, pipeline=pipeline
            )
            enqueued = job.enqueued_at.timestamp()
            pipeline.zadd(self.job_history_key, {job.id: enqueued})
            pipeline.zremrangebyrank(self.job_history_key, 0, -(DEFAULT_CRON_JOB_HISTORY_LIMIT + 1))
            pipeline.expire(self.job_history_key, DEFAULT_CRON_JOB_HISTORY_TTL)
            cron_job_registry.add(self.name, pipeline, enqueue_timestamp=enqueued)
            pipeline.execute()
        return job


class GuardedCronScheduler(CronScheduler):
    """RQ's cron scheduler whose jobs are enqueued as JSON."""

    def register(self, *args: Any, **kwargs: Any) -> CronJob:
        cron_job = super().register(*args, **kwargs)
        cron_job.__class__ = GuardedCronJob
        return cron_job
