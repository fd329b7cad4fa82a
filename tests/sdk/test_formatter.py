"""JSONFormatter: the seed example's fields, UTC millisecond timestamps, extras, redaction."""

from __future__ import annotations

import logging
import os
import re
import threading
from datetime import UTC, datetime

from agent.sdk import StructuredLogger
from shared.jsonlog import iso_utc

SEED_FIELDS = {"timestamp", "level", "logger", "message", "module", "function", "line", "thread", "process"}


def log_request_end(logger: logging.Logger) -> int:
    logger.info(
        "Request completed",
        extra={"request_id": "req-abc123", "method": "POST", "status_code": 200, "duration_ms": 150.5},
    )
    return _line_of_info_call()


def _line_of_info_call() -> int:
    return log_request_end.__code__.co_firstlineno + 1


def test_entry_has_every_field_of_the_seed_example_with_correct_values(capture_logs):
    capture = capture_logs("api.requests")
    line = log_request_end(capture.logger)
    (entry,) = capture.entries()
    assert set(entry) >= SEED_FIELDS
    assert entry["level"] == "INFO"
    assert entry["logger"] == "api.requests"
    assert entry["message"] == "Request completed"
    assert entry["module"] == "test_formatter"
    assert entry["function"] == "log_request_end"
    assert entry["line"] == line
    assert entry["thread"] == threading.get_ident()
    assert entry["process"] == os.getpid()
    assert entry["request_id"] == "req-abc123"
    assert entry["status_code"] == 200
    assert entry["duration_ms"] == 150.5


def test_timestamp_is_utc_iso8601_with_milliseconds_and_z(capture_logs):
    capture = capture_logs("fmt.ts")
    before = datetime.now(tz=UTC)
    capture.logger.warning("x")
    stamp = capture.entries()[0]["timestamp"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", stamp)
    parsed = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs((parsed - before).total_seconds()) < 5


def test_iso_utc_keeps_milliseconds_and_ignores_local_timezone():
    assert iso_utc(1705314645.1239) == "2024-01-15T10:30:45.123Z"
    assert iso_utc(0.0) == "1970-01-01T00:00:00.000Z"


def test_exception_is_included_with_its_stack_trace_and_secrets_redacted(capture_logs):
    capture = capture_logs("fmt.exc")
    try:
        raise ValueError("login failed for password=hunter2")
    except ValueError:
        capture.logger.exception("boom")
    entry = capture.entries()[0]
    assert entry["level"] == "ERROR"
    assert "Traceback (most recent call last)" in entry["exception"]
    assert "ValueError: login failed for password=[REDACTED]" in entry["exception"]
    assert "hunter2" not in capture.stream.getvalue()


def test_structured_fields_that_clash_with_entry_fields_are_kept_apart(capture_logs):
    capture = capture_logs("fmt.clash")
    StructuredLogger("fmt.clash").info("real message", message="user supplied", level="fake", size=3)
    entry = capture.entries()[0]
    assert entry["message"] == "real message"
    assert entry["level"] == "INFO"
    assert entry["extra_message"] == "user supplied"
    assert entry["extra_level"] == "fake"
    assert entry["size"] == 3


def test_extra_objects_are_written_as_text_not_dropped(capture_logs):
    capture = capture_logs("fmt.obj")

    class Order:
        def __str__(self) -> str:
            return "order #7 token=abcdef123"

    capture.logger.info("placed", extra={"order": Order()})
    entry = capture.entries()[0]
    assert entry["order"] == "order #7 token=[REDACTED]"
    assert entry["service"] == "shop"


def test_structured_logger_records_name_the_calling_function(capture_logs):
    capture = capture_logs("fmt.caller")
    StructuredLogger("fmt.caller").warning("from here", n=1)
    entry = capture.entries()[0]
    assert entry["function"] == "test_structured_logger_records_name_the_calling_function"
    assert entry["module"] == "test_formatter"
