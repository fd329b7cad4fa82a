"""The batch wire format: round trip, and rejection with a reason naming what is wrong."""

from __future__ import annotations

import re

import msgpack
import pytest

from shared.wire import COUNTER, MAX_BATCH_BYTES, WireError, decode_batch, encode_batch, series_dict


def metrics_body(**changes) -> dict:
    body = {
        "v": 1,
        "kind": "metrics",
        "agent": {"id": "agent-1", "host": "web-1", "version": "0.1.0"},
        "epoch": 1_700_000_000_000,
        "seq": 7,
        "sent_at": 1_700_000_010.5,
        "series": [
            {"name": "system_load1", "type": "gauge", "labels": {}, "points": [[1_700_000_010.0, 0.5]]}
        ],
    }
    body.update(changes)
    return body


def packed(body: dict) -> bytes:
    return msgpack.packb(body, use_bin_type=True)


def test_metrics_batch_round_trips_with_identity_and_points():
    data = encode_batch(
        kind="metrics",
        agent_id="agent-1",
        host="web-1",
        agent_version="0.1.0",
        epoch=1_700_000_000_000,
        seq=42,
        sent_at=1_700_000_010.25,
        series=[
            series_dict("system_cpu_usage_percent", [[1_700_000_010.0, 12.5]], {"core": "0"}),
            series_dict("system_network_bytes_recv_total", [[1_700_000_010.0, 123456.0]], None, COUNTER),
        ],
    )
    batch = decode_batch(data)
    assert batch.identity == ("agent-1", 1_700_000_000_000, 42)
    assert (batch.kind, batch.host, batch.agent_version, batch.sent_at) == (
        "metrics",
        "web-1",
        "0.1.0",
        1_700_000_010.25,
    )
    assert [(s.name, s.type, s.labels, s.points) for s in batch.series] == [
        ("system_cpu_usage_percent", "gauge", {"core": "0"}, [[1_700_000_010.0, 12.5]]),
        ("system_network_bytes_recv_total", "counter", {}, [[1_700_000_010.0, 123456.0]]),
    ]
    assert batch.sample_count() == 2


def test_host_labels_travel_in_the_agent_map():
    data = encode_batch(
        kind="metrics",
        agent_id="a",
        host="h",
        agent_version="",
        epoch=1,
        seq=0,
        sent_at=1.0,
        series=[],
        host_labels={"env": "prod", "region": "eu"},
    )
    assert msgpack.unpackb(data)["agent"]["labels"] == {"env": "prod", "region": "eu"}
    assert decode_batch(data).host_labels == {"env": "prod", "region": "eu"}


def test_logs_batch_round_trips():
    record = {"ts": 1_700_000_010.0, "level": "ERROR", "message": "boom", "module": "views"}
    data = encode_batch(
        kind="logs", agent_id="a", host="h", agent_version="", epoch=1, seq=0, sent_at=1.0, logs=[record]
    )
    batch = decode_batch(data)
    assert batch.kind == "logs" and batch.logs == [record] and batch.series == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (metrics_body(v=3), "unsupported wire version 3"),
        (metrics_body(v=None), "unsupported wire version None"),
        (metrics_body(kind="traces"), "unknown batch kind 'traces'"),
        (metrics_body(agent={"host": "web-1"}), "'agent.id' must be a non-empty string"),
        (metrics_body(agent={"id": "", "host": "web-1"}), "'agent.id' must be a non-empty string"),
        (metrics_body(agent={"id": "a"}), "'agent.host' must be a non-empty string"),
        ({k: v for k, v in metrics_body().items() if k != "agent"}, "missing 'agent' map"),
        (metrics_body(agent={"id": "a", "host": "h", "labels": {"env": 1}}), "agent.labels must map"),
        (metrics_body(seq=-1), "'seq' must be a non-negative integer"),
        (metrics_body(epoch="x"), "'epoch' must be a non-negative integer"),
        (metrics_body(sent_at=float("nan")), "'sent_at' must be a finite number"),
        (
            metrics_body(series=[{"name": "cpu usage", "points": []}]),
            "series name 'cpu usage' is not a valid metric name",
        ),
        (
            metrics_body(series=[{"name": "x", "type": "histogram", "points": []}]),
            "series 'x': type 'histogram' must be 'gauge' or 'counter'",
        ),
        (
            metrics_body(series=[{"name": "x", "labels": {"a-b": "1"}, "points": []}]),
            "series 'x': invalid label name in ['a-b']",
        ),
        (
            metrics_body(series=[{"name": "x", "labels": {"a": 1}, "points": []}]),
            "series 'x': label values must be strings",
        ),
        (
            metrics_body(series=[{"name": "x", "points": [[1.0]]}]),
            "series 'x' has a point that is not [timestamp, value]",
        ),
        (
            metrics_body(series=[{"name": "x", "points": [[1.0, "high"]]}]),
            "has a point that is not [timestamp, value]",
        ),
        (
            metrics_body(series=[{"name": "x", "points": [[1.0, True]]}]),
            "has a point that is not [timestamp, value]",
        ),
        (
            metrics_body(series=[{"name": "x", "points": 5}]),
            "series 'x': points must be a list of [timestamp, value]",
        ),
        (metrics_body(series=None), "metrics batch needs a 'series' list"),
        (metrics_body(kind="logs", logs=[{"ts": 1.0}]), "logs[0].message must be a string"),
        (metrics_body(kind="logs", logs=[{"message": "m"}]), "logs[0].ts must be seconds since 1970"),
    ],
)
def test_bad_batch_is_rejected_with_a_specific_reason(body, reason):
    with pytest.raises(WireError) as error:
        decode_batch(packed(body))
    assert reason in str(error.value)


def test_bytes_that_are_not_msgpack_are_rejected_as_such():
    with pytest.raises(WireError, match="not valid msgpack"):
        decode_batch(b"\xc1\x00garbage")


def test_msgpack_that_is_not_a_map_is_rejected():
    with pytest.raises(WireError, match="batch must be a map, got list"):
        decode_batch(packed([1, 2, 3]))


def test_oversized_batch_is_rejected_before_decoding():
    with pytest.raises(WireError, match="exceeds the"):
        decode_batch(b"\x00" * (MAX_BATCH_BYTES + 1))


def logs_body(record: dict) -> dict:
    return metrics_body(kind="logs", series=None, logs=[record])


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"a": value}
    return value


GOOD_RECORD = {"ts": 1_700_000_010.0, "level": "INFO", "message": "m"}
SERIES = {"name": "x", "type": "gauge", "labels": {}, "points": [[1_700_000_010.0, 1.0]]}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (metrics_body(v={"a": 1}), "unsupported wire version {'a': 1}"),
        (metrics_body(v=True), "unsupported wire version True"),
        (metrics_body(kind=["metrics"]), "unknown batch kind ['metrics']"),
        (metrics_body(kind={"k": 1}), "unknown batch kind"),
        (metrics_body(agent=[1, 2]), "missing 'agent' map"),
        (metrics_body(agent={"id": {"x": 1}, "host": "h"}), "'agent.id' must be a non-empty string"),
        (metrics_body(agent={"id": "a" * 201, "host": "h"}), "'agent.id' is 201 characters long (limit 200)"),
        (metrics_body(agent={"id": "a\x00b", "host": "h"}), "'agent.id' contains a NUL character"),
        (metrics_body(agent={"id": "a", "host": "h" * 256}), "'agent.host' is 256 characters long"),
        (
            metrics_body(agent={"id": "a", "host": "h", "version": "v" * 51}),
            "'agent.version' is 51 characters",
        ),
        (metrics_body(agent={"id": "a", "host": "h", "version": 3}), "agent.version must be a string"),
        (metrics_body(agent={"id": "a", "host": "h", "labels": [1]}), "agent.labels must map"),
        (metrics_body(agent={"id": "a", "host": "h", "labels": {"e": "a\x00"}}), "contains a NUL character"),
        (metrics_body(epoch=2**64 - 1), "'epoch' must be a non-negative integer below 2**63"),
        (metrics_body(seq=2**63), "'seq' must be a non-negative integer below 2**63"),
        (metrics_body(seq=1.0), "'seq' must be a non-negative integer"),
        (metrics_body(seq=True), "'seq' must be a non-negative integer"),
        (metrics_body(sent_at=float("inf")), "'sent_at' must be a finite number"),
        (metrics_body(sent_at=-1.0), "'sent_at' must be a finite number"),
        (metrics_body(sent_at=1e300), "'sent_at' must be a finite number"),
        (metrics_body(series={"a": 1}), "metrics batch needs a 'series' list"),
        (metrics_body(series=[5]), "series entry must be a map, got int"),
        (metrics_body(series=[{**SERIES, "name": {"n": 1}}]), "is not a valid metric name"),
        (metrics_body(series=[{**SERIES, "name": "n" * 201}]), "series name is 201 characters long"),
        (metrics_body(series=[{**SERIES, "type": {"t": 1}}]), "type {'t': 1} must be 'gauge' or 'counter'"),
        (metrics_body(series=[{**SERIES, "type": ["gauge"]}]), "must be 'gauge' or 'counter'"),
        (metrics_body(series=[{**SERIES, "labels": [["a", "b"]]}]), "labels must map label names to strings"),
        (metrics_body(series=[{**SERIES, "labels": {"a": {"b": "c"}}}]), "label values must be strings"),
        (
            metrics_body(series=[{**SERIES, "labels": {"a": "b\x00"}}]),
            "label values must be strings without NUL",
        ),
        (metrics_body(series=[{**SERIES, "points": [{"a": 1, "b": 2}]}]), "not [timestamp, value]"),
        (metrics_body(series=[{**SERIES, "points": [[{"t": 1}, 1.0]]}]), "not [timestamp, value]"),
        (metrics_body(series=[{**SERIES, "points": [[1.0, [1]]]}]), "not [timestamp, value]"),
        (metrics_body(series=[{**SERIES, "points": [7]}]), "not [timestamp, value]"),
        (metrics_body(series=[{**SERIES, "points": [[2**64 - 1, 1.0]]}]), "not seconds since 1970"),
        (
            logs_body({**GOOD_RECORD, "level": {"name": "INFO"}}),
            "logs[0].level must be a level name or number",
        ),
        (logs_body({**GOOD_RECORD, "level": ["INFO"]}), "logs[0].level must be a level name or number"),
        (logs_body({**GOOD_RECORD, "level": float("nan")}), "logs[0].level must be a level name or number"),
        (logs_body({**GOOD_RECORD, "level": float("inf")}), "logs[0].level must be a level name or number"),
        (logs_body({**GOOD_RECORD, "ts": float("nan")}), "logs[0].ts must be seconds since 1970"),
        (logs_body({**GOOD_RECORD, "ts": 2**64 - 1}), "logs[0].ts must be seconds since 1970"),
        (logs_body({**GOOD_RECORD, "message": {"m": 1}}), "logs[0].message must be a string"),
        (logs_body({**GOOD_RECORD, "host": ["h"]}), "logs[0].host must be a string"),
        (logs_body({**GOOD_RECORD, "service": {"s": 1}}), "logs[0].service must be a string"),
        (logs_body({**GOOD_RECORD, "attrs": [1, 2]}), "logs[0].attrs must be a map"),
        (logs_body({**GOOD_RECORD, "attrs": nested(40)}), "logs[0].attrs is nested more than 32 levels deep"),
        (logs_body({**GOOD_RECORD, "extra": nested(40)}), "logs[0].extra is nested more than 32 levels deep"),
        (logs_body({**GOOD_RECORD, b"k": 1}), "has a key that is not a string"),
        (metrics_body(kind="logs", logs=[{**GOOD_RECORD}, "x"]), "logs[1] must be a map"),
    ],
)
def test_type_confused_or_out_of_range_batch_is_rejected_with_a_reason(body, reason):
    with pytest.raises(WireError) as error:
        decode_batch(packed(body))
    assert reason in str(error.value)
    assert len(str(error.value)) < 400  # a reason quotes the offending value, never all of it


def test_invalid_utf8_and_trailing_bytes_are_rejected_as_not_msgpack():
    for data in (b"\xa2\xff\xfe", packed(metrics_body()) + b"\x00", b""):
        with pytest.raises(WireError, match="not valid msgpack"):
            decode_batch(data)


def test_a_huge_string_is_quoted_short_in_the_reason():
    with pytest.raises(WireError) as error:
        decode_batch(packed(metrics_body(kind="x" * 1_000_000)))
    assert len(str(error.value)) < 300


def test_deeply_nested_bytes_are_rejected():
    with pytest.raises(WireError, match="not valid msgpack"):
        decode_batch(b"\x91" * 100_000 + b"\x90")  # a list in a list ... 100,000 deep
    with pytest.raises(WireError, match="nested more than 32 levels deep"):
        decode_batch(packed(logs_body({**GOOD_RECORD, "attrs": {"x": nested(400)}})))


def test_log_levels_as_names_numbers_or_absent_and_nul_in_a_message_are_accepted():
    records = [
        {**GOOD_RECORD, "level": 40},
        {**GOOD_RECORD, "level": None},
        {"ts": 1, "message": "a\x00b", "attrs": nested(10), "service": 7},
    ]
    batch = decode_batch(packed(metrics_body(kind="logs", logs=records)))
    assert batch.logs == records


@pytest.mark.parametrize(
    ("series", "reason"),
    [
        # Two bytes of a bin value would unpack into two integers: not a point.
        ({"name": "up", "points": [b"\x05\x07"]}, "not [timestamp, value]"),
        ({"name": "up", "points": [[1_700_000_000.0, 1.0], b"ab"]}, "not [timestamp, value]"),
        # "$" matched before a final newline: no name nor label name may end with one.
        ({"name": "up\n", "points": []}, "not a valid metric name"),
        ({"name": "up", "labels": {"job\n": "x"}, "points": []}, "invalid label name"),
    ],
)
def test_points_that_are_not_pairs_and_names_ending_in_a_newline_are_rejected(series, reason):
    with pytest.raises(WireError, match=re.escape(reason)):
        decode_batch(packed(metrics_body(series=[series])))
    with pytest.raises(WireError, match=re.escape("agent.labels")):
        decode_batch(packed(metrics_body(agent={"id": "a", "host": "h", "labels": {"team\n": "x"}})))
