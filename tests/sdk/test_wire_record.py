"""wire_record / parse_timestamp / normalise_level: structured entries to logs-batch records."""

from __future__ import annotations

import pytest

from shared.jsonlog import normalise_level, parse_timestamp, wire_record


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-15T10:30:45.123Z", 1705314645.123),
        ("2024-01-15T12:30:45.123+02:00", 1705314645.123),
        ("2024-01-15 10:30:45,123", 1705314645.123),
        ("2024-01-15T10:30:45", 1705314645.0),
        (1705314645.5, 1705314645.5),
        (1705314645500, 1705314645.5),
        ("yesterday", None),
        (float("nan"), None),
        (None, None),
        (True, None),
    ],
)
def test_timestamps_in_common_forms_are_read_as_utc_epoch_seconds(value, expected):
    result = parse_timestamp(value)
    assert result == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("warn", "WARNING"),
        ("FATAL", "CRITICAL"),
        ("err", "ERROR"),
        (10, "DEBUG"),
        (40, "ERROR"),
        ("nonsense", "INFO"),
        ("  info ", "INFO"),
        (None, "INFO"),
    ],
)
def test_levels_are_normalised_to_the_five_names(level, expected):
    assert normalise_level(level) == expected


def test_known_fields_go_top_level_and_the_rest_to_attrs():
    record = wire_record(
        {
            "timestamp": "2024-01-15T10:30:45.123Z",
            "level": "warning",
            "message": "Request completed",
            "logger": "api.requests",
            "module": "mw",
            "function": "end",
            "line": 85,
            "thread": 1,
            "process": 2,
            "request_id": "req-abc123",
            "trace_id": "t",
            "span_id": "s",
            "status_code": 200,
            "service": "api",
        },
        service="fallback",
    )
    assert record == {
        "ts": pytest.approx(1705314645.123),
        "level": "WARNING",
        "message": "Request completed",
        "logger": "api.requests",
        "module": "mw",
        "function": "end",
        "line": 85,
        "thread": 1,
        "process": 2,
        "request_id": "req-abc123",
        "trace_id": "t",
        "span_id": "s",
        "service": "api",
        "attrs": {"status_code": 200},
    }


def test_missing_timestamp_uses_now_and_missing_service_uses_the_default():
    record = wire_record({"msg": {"structured": True}}, service="svc", now=123.0)
    assert record == {"ts": 123.0, "level": "INFO", "message": '{"structured": true}', "service": "svc"}


def test_an_entry_in_the_record_shape_keeps_its_attrs_map_flat():
    # The SDK's fallback file holds records already in the batch shape (with an "attrs" map).
    entry = {
        "ts": 100.0,
        "level": "INFO",
        "message": "m",
        "attrs": {"user_id": 42, "k": "map"},
        "k": "top",
        "x": 1,
    }
    record = wire_record(entry, now=1.0)
    assert record["attrs"] == {"user_id": 42, "k": "map", "x": 1}  # the map wins; other keys are added
    assert record["ts"] == 100.0


def test_an_attrs_value_that_is_not_a_map_stays_an_attribute():
    assert wire_record({"message": "m", "attrs": "text"}, now=1.0)["attrs"] == {"attrs": "text"}
    assert "attrs" not in wire_record({"message": "m", "attrs": {}}, now=1.0)


@pytest.mark.parametrize("level", [{"name": "ERROR"}, ["WARNING"], float("nan"), None, b"INFO"])
def test_a_level_of_any_type_becomes_a_level_name(level):
    record = wire_record({"message": "m", "level": level}, now=1.0)
    assert record["level"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
