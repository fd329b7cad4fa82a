"""Rejected log records: counted per reason in the stats hash, logged at WARNING with a rate limit."""

from __future__ import annotations

import logging
import time

import pytest
from django.db import connection

from alerting_worker.ingest import stats
from alerting_worker.ingest.logs_handler import write_logs
from collector_server.logs import writer
from tests.logs.conftest import make_batch, record

BAD = [
    "not a record",
    record("bad level", level="LOUD"),
    record("too old", ago=400 * 86400),
    record("future", ago=-3 * 86400),
    {"ts": "yesterday", "level": "INFO", "message": "m"},
    {"ts": time.time(), "level": "INFO", "message": 42},
    record("long service", service="s" * 500),
    record("bad attrs", attrs=["x"]),
    record("too old again", ago=500 * 86400),
]


@pytest.fixture
def reject_log(monkeypatch):
    """A fresh rate limiter on a clock the test moves."""
    clock = [1000.0]
    limiter = writer.RejectLog(interval=60.0, clock=lambda: clock[0])
    monkeypatch.setattr(writer, "reject_log", limiter)
    return clock


def test_rejections_are_counted_per_reason(partitions, reject_log):
    counts = writer.Counter()
    rows = writer.rows_from_batches([make_batch([*BAD, record("good")])], writer.current_window(), counts)
    assert len(rows) == 1
    assert counts[writer.REJECTED] == len(BAD)
    per_reason = {
        k[len(writer.REJECTED_PREFIX) :]: v for k, v in counts.items() if k.startswith(writer.REJECTED_PREFIX)
    }
    assert per_reason == {
        "not_a_map": 1,
        "level": 1,
        "too_old": 2,
        "future": 1,
        "timestamp": 1,
        "message": 1,
        "service": 1,
        "attrs": 1,
    }
    assert sum(per_reason.values()) == counts[writer.REJECTED]


def test_per_reason_counts_reach_the_stats_hash(
    partitions, redis_client, reject_log, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), connection.cursor() as cursor:
        assert write_logs(cursor.cursor, [make_batch([*BAD, record("good")])]) == 1
    got = stats.read(redis_client)
    assert got["logs_ingested"] == 1
    assert got["logs_rejected"] == len(BAD)
    assert got["logs_rejected_too_old"] == 2
    assert got["logs_rejected_level"] == 1


def test_reasons_are_logged_once_per_kind_per_minute(partitions, reject_log, caplog):
    caplog.set_level(logging.WARNING, logger="collector_server.logs.writer")
    window = writer.current_window()
    too_old = [record(f"old {i}", ago=400 * 86400) for i in range(50)]
    writer.rows_from_batches(
        [make_batch([*too_old, record("x", level="LOUD")], host="web-7")], window, writer.Counter()
    )
    lines = [r for r in caplog.records if r.name == "collector_server.logs.writer"]
    assert [(r.levelno, r.reject_kind) for r in lines] == [
        (logging.WARNING, "too_old"),
        (logging.WARNING, "level"),
    ]
    assert "older than the log retention" in lines[0].getMessage()
    assert "web-7" in lines[0].getMessage()
    assert "'LOUD'" in lines[1].getMessage()

    caplog.clear()
    reject_log[0] += 30  # within the minute: nothing more is logged
    writer.rows_from_batches([make_batch(too_old[:5])], window, writer.Counter())
    assert not [r for r in caplog.records if r.name == "collector_server.logs.writer"]

    reject_log[0] += 31  # a minute after the first line: one line, with what was held back
    writer.rows_from_batches([make_batch(too_old[:1])], window, writer.Counter())
    (line,) = [r for r in caplog.records if r.name == "collector_server.logs.writer"]
    assert line.reject_kind == "too_old"
    assert line.suppressed == 49 + 5
    assert "54 more of this kind" in line.getMessage()
