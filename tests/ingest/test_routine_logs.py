"""Routine ingest jobs log at DEBUG; a periodic INFO summary counts what they did."""

from __future__ import annotations

import logging

import pytest

from alerting_worker.ingest import jobs
from alerting_worker.ingest.consumer import DrainResult
from alerting_worker.routine_logs import RoutineJobFilter


def record(msg: str, *args: object, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("rq.worker", level, __file__, 1, msg, args, None)


@pytest.mark.parametrize(
    "line",
    [
        record("Worker %s: %s: %s (%s)", "w1", "\x1b[32mingest\x1b[39;49;00m", "alerting_worker.ingest.jobs.drain_metrics()", "id1"),
        record("Worker %s: %s: %s (%s)", "w1", "ingest", "Job OK", "id1"),
        record("Successfully completed %s job in %ss on worker %s", "alerting_worker.ingest.jobs.drain_logs()", 0.1, "w1"),
        record("Enqueued job drain_metrics to queue ingest"),
    ],
)  # fmt: skip
def test_routine_ingest_lines_are_demoted_to_debug_and_dropped_at_info(line):
    logging.getLogger("rq.worker").setLevel(logging.INFO)
    assert RoutineJobFilter().filter(line) is False
    assert line.levelname == "DEBUG"


def test_other_jobs_and_problems_keep_their_level():
    alerts = record("Worker %s: %s: %s (%s)", "w1", "alerts", "Job OK", "id2")
    failure = record("job %s failed in ingest: %s", "id3", "boom", level=logging.ERROR)
    assert RoutineJobFilter().filter(alerts) is True and alerts.levelno == logging.INFO
    assert RoutineJobFilter().filter(failure) is True and failure.levelno == logging.ERROR


def test_summary_is_logged_once_per_interval_with_batches_samples_and_lag(settings, caplog, redis_client):
    settings.INGEST_LOG_SUMMARY_SECONDS = 3600
    summary = jobs.IngestSummary()
    caplog.set_level(logging.INFO, logger="alerting_worker.ingest.jobs")
    for _ in range(3):
        summary.add("metrics", DrainResult(entries=2, batches=2, rows=10))
    summary.add("logs", DrainResult(entries=1, batches=1, rows=4))
    assert not [r for r in caplog.records if "ingest summary" in r.getMessage()]
    settings.INGEST_LOG_SUMMARY_SECONDS = 1
    summary.since -= 2
    summary.add("metrics", DrainResult(entries=1, batches=1, rows=5))
    (line,) = [r.getMessage() for r in caplog.records if "ingest summary" in r.getMessage()]
    assert "5 drains" in line
    assert "metrics: 7 batches, 35 samples" in line and "logs: 1 batches, 4 records" in line
    assert "lag ?" in line  # no stream yet in this test's Redis
    assert summary.totals == {}
