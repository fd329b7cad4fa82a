"""The batch wire format: round trip, and rejection with a reason naming what is wrong."""

from __future__ import annotations

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
        (metrics_body(v=2), "unsupported wire version 2"),
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
