"""Wire format version 2: the documented test vector, round trips, and a reason for every bad field."""

from __future__ import annotations

import math
import re
import struct
from pathlib import Path

import msgpack
import pytest

from shared import wire_v2
from shared.wire import COUNTER, WireError, decode_batch, encode_batch, series_dict

DOC = Path(__file__).resolve().parent.parent / "docs" / "wire-format.md"


def vector_from_docs() -> bytes:
    """The hex block after the marker line in docs/wire-format.md's version 2 section."""
    text = DOC.read_text()
    start = text.index("<!-- v2 test vector -->")
    block = text[start:].split("```", 2)[1]
    return bytes.fromhex(re.sub(r"\s+", "", block))


def v2_body(**changes) -> dict:
    body = {
        "v": 2,
        "kind": "metrics",
        "agent": {"id": "agent-1", "host": "web-1", "version": "0.1.0"},
        "epoch": 1_700_000_000_000,
        "seq": 7,
        "sent_at": 1_700_000_010.5,
        "catalog": msgpack.packb([["up", "gauge", {}], ["net_bytes_total", "counter", {"if": "eth0"}]]),
        "points": struct.pack(">IddIdd", 0, 1_700_000_010.0, 1.0, 1, 1_700_000_010.0, 1234.0),
    }
    body.update(changes)
    return body


def packed(body: dict) -> bytes:
    return msgpack.packb(body, use_bin_type=True)


def test_documented_test_vector_decodes_to_the_documented_batch():
    data = vector_from_docs()
    batch = decode_batch(data)
    assert batch.version == 2
    assert batch.identity == ("a1", 1, 0)
    assert (batch.kind, batch.host, batch.agent_version, batch.sent_at) == ("metrics", "h", "", 1.5)
    assert [(s.name, s.type, s.labels, s.points) for s in batch.all_series()] == [
        ("up", "gauge", {}, [[1.0, 1.0]]),
        ("net_bytes_total", "counter", {"if": "eth0"}, [[1.0, 1234.0], [11.0, 2048.0]]),
    ]
    assert batch.sample_count() == 3
    # The encoder writes exactly these bytes, so a third-party producer can compare byte for byte.
    assert (
        encode_batch(
            kind="metrics",
            agent_id="a1",
            host="h",
            agent_version="",
            epoch=1,
            seq=0,
            sent_at=1.5,
            series=[
                series_dict("up", [[1.0, 1.0]]),
                series_dict("net_bytes_total", [[1.0, 1234.0], [11.0, 2048.0]], {"if": "eth0"}, COUNTER),
            ],
            version=2,
        )
        == data
    )
    assert f"is {len(data)} bytes" in DOC.read_text()


def test_round_trip_keeps_identity_labels_and_points():
    series = [
        series_dict("system_cpu_usage_percent", [[1_700_000_010.0, 12.5]], {"core": "0"}),
        series_dict("system_network_bytes_recv_total", [[1_700_000_010.0, 2**40]], None, COUNTER),
    ]
    data = encode_batch(
        kind="metrics",
        agent_id="agent-1",
        host="web-1",
        agent_version="0.1.0",
        epoch=1_700_000_000_000,
        seq=42,
        sent_at=1_700_000_010.25,
        series=series,
        host_labels={"env": "prod"},
        version=2,
    )
    batch = decode_batch(data)
    assert batch.identity == ("agent-1", 1_700_000_000_000, 42)
    assert batch.host_labels == {"env": "prod"} and batch.series == []
    assert [(s.name, s.type, s.labels, s.points) for s in batch.all_series()] == [
        ("system_cpu_usage_percent", "gauge", {"core": "0"}, [[1_700_000_010.0, 12.5]]),
        ("system_network_bytes_recv_total", "counter", {}, [[1_700_000_010.0, float(2**40)]]),
    ]


def test_an_encoder_reuses_the_catalog_bytes_and_the_decoder_its_validated_catalog():
    encoder = wire_v2.Encoder()
    fields = dict(agent_id="a", host="h", agent_version="", epoch=1, sent_at=5.0)
    first = encoder.encode(seq=1, series=[series_dict("up", [[5.0, 1.0]])], **fields)
    second = encoder.encode(seq=2, series=[series_dict("up", [[15.0, 0.0]])], **fields)
    assert decode_batch(first).catalog is decode_batch(second).catalog
    changed = encoder.encode(seq=3, series=[series_dict("up", [[25.0, 1.0]], {"a": "b"})], **fields)
    assert decode_batch(changed).catalog.labels == ({"a": "b"},)


def test_non_finite_values_decode_and_are_left_to_the_handler():
    points = struct.pack(">IddIdd", 0, 10.0, math.nan, 0, 20.0, math.inf)
    batch = decode_batch(packed(v2_body(points=points)))
    assert batch.sample_count() == 2


BAD_FIELDS = [
    ({"v": 3}, "unsupported wire version 3"),
    ({"kind": "logs"}, "version 2 is for metrics batches only"),
    ({"catalog": None}, "'catalog' must be bytes"),
    ({"catalog": "text, not bin"}, "'catalog' must be bytes"),
    ({"catalog": [["up", "gauge", {}]]}, "'catalog' must be bytes"),
    ({"catalog": b"\xc1"}, "'catalog' is not valid msgpack"),
    ({"catalog": msgpack.packb([["up", "gauge", {}]]) + b"\x00"}, "'catalog' is not valid msgpack"),
    ({"catalog": msgpack.packb({"up": 1})}, "must hold an array"),
    ({"catalog": msgpack.packb([["up", "gauge"]])}, "catalog[0] must be [name, type, labels]"),
    ({"catalog": msgpack.packb(["up"])}, "catalog[0] must be [name, type, labels]"),
    ({"catalog": msgpack.packb([["cpu usage", "gauge", {}]])}, "not a valid metric name"),
    ({"catalog": msgpack.packb([[7, "gauge", {}]])}, "not a valid metric name"),
    ({"catalog": msgpack.packb([["m" * 201, "gauge", {}]])}, "limit 200"),
    ({"catalog": msgpack.packb([["up", "histogram", {}]])}, "must be 'gauge' or 'counter'"),
    ({"catalog": msgpack.packb([["up", None, {}]])}, "must be 'gauge' or 'counter'"),
    ({"catalog": msgpack.packb([["up", "gauge", None]])}, "labels must map label names"),
    ({"catalog": msgpack.packb([["up", "gauge", {"1x": "a"}]])}, "invalid label name"),
    ({"catalog": msgpack.packb([["up", "gauge", {"a": 1}]])}, "label values must be strings"),
    ({"catalog": msgpack.packb([["up", "gauge", {"a": "\x00"}]])}, "label values must be strings"),
    ({"catalog": msgpack.packb([["up", "gauge", {1: "a"}]], strict_types=False)}, "not valid msgpack"),
    ({"points": None}, "'points' must be bytes"),
    ({"points": [[0, 1.0, 1.0]]}, "'points' must be bytes"),
    ({"points": b"\x00" * 19}, "not a whole number of 20-byte records"),
    ({"points": struct.pack(">Idd", 2, 1.0, 1.0)}, "refers to series index 2; the catalog has 2 series"),
    ({"points": struct.pack(">IddIdd", 0, 1.0, 1.0, 2**32 - 1, 1.0, 1.0)}, "point 1 refers to series index"),
    ({"points": struct.pack(">Idd", 0, math.nan, 1.0)}, "has timestamp nan"),
    ({"points": struct.pack(">Idd", 0, -1.0, 1.0)}, "has timestamp -1.0"),
    ({"points": struct.pack(">IddIdd", 0, 1.0, 1.0, 0, 1.7e12, 1.0)}, "point 1 has timestamp"),
    ({"points": struct.pack(">Idd", 0, math.inf, 1.0)}, "has timestamp inf"),
]


@pytest.mark.parametrize(("changes", "reason"), BAD_FIELDS)
def test_every_bad_field_is_refused_with_its_reason(changes, reason):
    with pytest.raises(WireError) as caught:
        decode_batch(packed(v2_body(**changes)))
    assert reason in str(caught.value)


def test_missing_catalog_or_points_is_refused():
    for key in ("catalog", "points"):
        body = v2_body()
        del body[key]
        with pytest.raises(WireError, match=f"'{key}' must be bytes"):
            decode_batch(packed(body))


def test_an_empty_batch_is_valid():
    batch = decode_batch(packed(v2_body(catalog=msgpack.packb([]), points=b"")))
    assert batch.sample_count() == 0 and batch.all_series() == []
