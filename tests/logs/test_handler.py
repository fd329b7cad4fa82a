"""The logs ingest handler: COPY, rejections counted, hostile text stored safely."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from alerting_worker.ingest import stats
from alerting_worker.ingest.logs_handler import LOGS_HANDLER
from collector_server.logs.records import MAX_MESSAGE_CHARS, TRUNCATED_ATTR
from tests.logs.conftest import fetch_all, make_batch, record


def test_records_are_stored_with_columns_and_attributes(store):
    written = store(
        [
            record(
                "Request completed",
                logger="api.requests",
                service="llm-platform",
                request_id="req-abc123",
                trace_id="t1",
                span_id="s1",
                module="logging_middleware",
                line=85,
                status_code=200,
                attrs={"user_id": 42},
            )
        ],
        host="web-7",
    )
    assert written == 1
    rows = fetch_all(
        "SELECT host, service, level, level_no, message, logger, request_id, trace_id, span_id, attrs "
        "FROM logs_entry"
    )
    host, service, level, level_no, message, logger, request_id, trace_id, span_id, attrs = rows[0]
    assert (host, service, level, level_no, message, logger) == (
        "web-7",
        "llm-platform",
        "INFO",
        20,
        "Request completed",
        "api.requests",
    )
    assert (request_id, trace_id, span_id) == ("req-abc123", "t1", "s1")
    attrs = json.loads(attrs) if isinstance(attrs, str) else attrs
    assert attrs == {"user_id": 42, "module": "logging_middleware", "line": 85, "status_code": 200}


def test_invalid_records_are_counted_and_the_rest_of_the_batch_is_stored(partitions, django_db_blocker):
    from django.db import connection

    now = time.time()
    records = [
        record("good one"),
        "not a map",
        record("bad level", level="LOUD"),
        {"ts": now - 40 * 86400, "level": "INFO", "message": "older than retention"},
        {"ts": now + 3 * 86400, "level": "INFO", "message": "far future"},
        record("bad attrs", attrs=[1, 2]),
        record("id too long", request_id="r" * 500),
        record("warn alias", level="warn"),
    ]
    with connection.cursor() as cursor:
        written, counts = LOGS_HANDLER(cursor.cursor, [make_batch(records)])
    assert written == 2
    assert counts["logs_rejected"] == 6
    assert counts["logs_ingested"] == 2
    assert sorted(fetch_all("SELECT message, level FROM logs_entry")) == [
        ("good one", "INFO"),
        ("warn alias", "WARNING"),
    ]


def test_rejections_reach_the_redis_stats_hash_after_commit(
    store, redis_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        store([record("ok"), record("bad", level="NOPE"), record("also ok", level="ERROR")])
    counters = stats.read(redis_client)
    assert counters["logs_ingested"] == 2
    assert counters["logs_rejected"] == 1


def test_nul_bytes_and_copy_control_characters_survive(store):
    message = "tab\there\nnew line\\backslash\x00nul\rcr"
    store([record(message, request_id="req\x00nul", attrs={"k\x00": "v\x00", "text": "a\tb"})])
    (stored, request_id, attrs) = fetch_all("SELECT message, request_id, attrs::text FROM logs_entry")[0]
    assert stored == "tab\there\nnew line\\backslash\ufffdnul\rcr"
    assert request_id == "req\ufffdnul"
    assert json.loads(attrs) == {"k\ufffd": "v\ufffd", "text": "a\tb"}


def test_lone_surrogates_are_stored_as_visible_escapes(store):
    store([record("bad \udcff bytes", attrs={"path": "/tmp/\udce9"})])
    message, attrs = fetch_all("SELECT message, attrs::text FROM logs_entry")[0]
    assert message == "bad \\udcff bytes"
    assert json.loads(attrs) == {"path": "/tmp/\\udce9"}


def test_one_megabyte_message_is_truncated_and_counted(partitions):
    from django.db import connection

    huge = "x" * (1024 * 1024)
    with connection.cursor() as cursor:
        written, counts = LOGS_HANDLER(cursor.cursor, [make_batch([record(huge), record("small")])])
    assert written == 2
    assert counts["logs_truncated"] == 1
    length, attrs = fetch_all(
        "SELECT length(message), attrs::text FROM logs_entry WHERE message LIKE 'xxx%%'"
    )[0]
    assert length == MAX_MESSAGE_CHARS
    assert json.loads(attrs) == {TRUNCATED_ATTR: 1024 * 1024}


def test_nan_attribute_and_non_json_values_do_not_break_the_batch(store):
    store([record("odd attrs", attrs={"ratio": float("nan"), "when": object.__new__(object)})])
    (attrs,) = fetch_all("SELECT attrs::text FROM logs_entry")[0]
    parsed = json.loads(attrs)
    assert parsed["ratio"] == "nan"
    assert parsed["when"].startswith("<object object")


def test_levels_map_aliases_and_python_numbers(store):
    store(
        [
            record("a", level="fatal"),
            record("b", level=35),
            record("c", level="trace"),
            record("d", level=None),
        ]
    )
    assert sorted(fetch_all("SELECT message, level, level_no FROM logs_entry")) == [
        ("a", "CRITICAL", 50),
        ("b", "WARNING", 30),
        ("c", "DEBUG", 10),
        ("d", "INFO", 20),
    ]


def test_records_of_an_older_day_create_their_partition(store, settings):
    # 20 days back: older than any partition another test module creates for its session
    # (tests/server makes the last 14 days), inside a retention widened for this test.
    settings.LOG_RETENTION_DAYS = 30
    ts = time.time() - 20 * 86400
    expected = "logs_entry_p" + datetime.fromtimestamp(ts, UTC).strftime("%Y%m%d")
    assert fetch_all("SELECT to_regclass(%s)", [expected])[0][0] is None
    store([{"ts": ts, "level": "INFO", "message": "twenty days ago"}])
    assert fetch_all("SELECT to_regclass(%s)::text", [expected])[0][0] == expected
    assert fetch_all(f"SELECT message FROM {expected}") == [("twenty days ago",)]
