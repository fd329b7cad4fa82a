"""Property tests: mutated and random entries among valid ones, drained by the real consumer.

Whatever an entry holds, one drain ends with it stored or dead-lettered with a reason:
every valid sample and record is stored once, every mutated entry is dead-lettered,
nothing stays pending. Real Redis and Postgres; a bounded number of examples.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import struct
import time
from typing import Any

import msgpack
import pytest
from django.db import connection
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from alerting_worker.ingest.consumer import StreamConsumer
from alerting_worker.ingest.logs_handler import LOGS_HANDLER
from alerting_worker.ingest.metrics_handler import MetricsHandler
from shared import streams

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("clean_tables")]

NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*\Z")
MAX_INT64 = 2**63 - 1
_examples = itertools.count()


def deep(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def depth_of(value: Any) -> int:
    if type(value) is dict:
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if type(value) is list:
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
    st.binary(max_size=12),
    st.sampled_from(
        ["", "\x00", "up\x00", "gauge", "metrics", "logs", "x" * 300_000, 2**63, 2**64 - 1, 1e11]
    ),
)
ANY = st.one_of(
    st.recursive(
        SCALARS, lambda c: st.lists(c, max_size=3) | st.dictionaries(TEXT, c, max_size=3), max_leaves=6
    ),
    st.sampled_from([deep(40), {"a": deep(40)}, {f"k{i}": "v" for i in range(20_000)}]),
)


def number(v: Any) -> bool:
    return type(v) in (int, float)


def timestamp(v: Any) -> bool:
    return number(v) and 0 <= v < 1e11


def text(v: Any, limit: int, empty: bool = False) -> bool:
    return type(v) is str and (empty or v != "") and len(v) <= limit and "\x00" not in v


def label_map(v: Any) -> bool:
    return v is None or (type(v) is dict and all(type(k) is str and LABEL.match(k) and text(x, 10**9, True)
                                                 for k, x in v.items()))  # fmt: skip


# What each field may hold (docs/wire-format.md); a mutation puts a value none of these accepts.
MAY_HOLD = {
    ("v",): lambda v: type(v) is int and v == 1,
    ("kind",): lambda v: v in ("metrics", "logs"),
    ("agent",): lambda v: type(v) is dict and "id" in v and "host" in v,
    ("agent", "id"): lambda v: text(v, 200),
    ("agent", "host"): lambda v: text(v, 255),
    ("agent", "version"): lambda v: text(v, 50, empty=True),
    ("agent", "labels"): label_map,
    ("epoch",): lambda v: type(v) is int and 0 <= v <= MAX_INT64,
    ("seq",): lambda v: type(v) is int and 0 <= v <= MAX_INT64,
    ("sent_at",): timestamp,
}
SERIES_MAY_HOLD = {
    (): lambda v: type(v) is dict and "name" in v and "points" in v,
    ("name",): lambda v: type(v) is str and bool(NAME.match(v)) and len(v) <= 200,
    ("type",): lambda v: v in ("gauge", "counter"),
    ("labels",): label_map,
    ("labels", "k"): lambda v: text(v, 10**9, empty=True),
    ("points",): lambda v: type(v) is list,
    ("points", 0): lambda v: type(v) is list and len(v) == 2 and timestamp(v[0]) and number(v[1]),
    ("points", 0, 0): timestamp,
    ("points", 0, 1): number,
}
RECORD_MAY_HOLD = {
    (): lambda v: type(v) is dict and "ts" in v and "message" in v,
    ("ts",): timestamp,
    ("message",): lambda v: type(v) is str,
    ("level",): lambda v: type(v) in (str, int, type(None)),
    ("host",): lambda v: type(v) in (str, type(None)),
    ("service",): lambda v: type(v) in (str, int, type(None)),
    ("request_id",): lambda v: type(v) in (str, int, type(None)),
    ("attrs",): lambda v: v is None or (type(v) is dict and depth_of(v) <= 32),
    ("extra",): lambda v: depth_of(v) <= 32,
}


def valid_metrics(n: int, now: float) -> tuple[dict, int]:
    host = f"h{n}"
    series = [
        {"name": f"m_{i}", "type": "gauge", "labels": {"k": f"v{i}"}, "points": [[now - n - i, float(i)]]}
        for i in range(1 + n % 3)
    ]
    body = {"v": 1, "kind": "metrics", "agent": {"id": host, "host": host, "version": "1"}, "epoch": 1,
            "seq": n, "sent_at": now, "series": series}  # fmt: skip
    return body, len(series)


def valid_logs(n: int, now: float) -> tuple[dict, int]:
    host = f"h{n}"
    logs = [
        {
            "ts": now - i,
            "level": ["INFO", "ERROR", 20, None][i % 4],
            "message": f"m{i}\x00",
            "attrs": {"i": i},
        }
        for i in range(1 + n % 3)
    ]
    body = {"v": 1, "kind": "logs", "agent": {"id": host, "host": host, "version": "1"}, "epoch": 1,
            "seq": n, "sent_at": now, "logs": logs}  # fmt: skip
    return body, len(logs)


def put(body: dict, path: tuple, value: Any) -> None:
    target: Any = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value


def mutation_paths(kind: str) -> list[tuple]:
    paths = list(MAY_HOLD)
    inner = SERIES_MAY_HOLD if kind == "metrics" else RECORD_MAY_HOLD
    items = "series" if kind == "metrics" else "logs"
    paths.append((items,))
    return paths + [(items, 0, *path) for path in inner]


def may_hold(kind: str, path: tuple, value: Any) -> bool:
    if path in MAY_HOLD:
        return MAY_HOLD[path](value)
    if len(path) == 1:  # the series or logs list itself
        return type(value) is list
    inner = SERIES_MAY_HOLD if kind == "metrics" else RECORD_MAY_HOLD
    return inner[path[2:]](value)


# Version 2 (metrics): the catalog's entries, and the points' records.
CATALOG_MAY_HOLD = {
    (): lambda v: type(v) is list and len(v) == 3 and all(CATALOG_MAY_HOLD[(i,)](x) for i, x in enumerate(v)),
    (0,): lambda v: type(v) is str and bool(NAME.match(v)) and len(v) <= 200,
    (1,): lambda v: v in ("gauge", "counter"),
    (2,): lambda v: type(v) is dict and label_map(v),
    (2, "k"): lambda v: text(v, 10**9, empty=True),
}
V2_MAY_HOLD = {
    **{path: check for path, check in MAY_HOLD.items() if path not in (("v",), ("kind",))},
    ("v",): lambda v: type(v) is int and v == 2,
    ("kind",): lambda v: v == "metrics",
}
# Byte-level damage to the points of a valid version 2 batch (each one refused).
POINT_DAMAGE = {
    "truncated": lambda points, n: points[:-1],
    "one byte more": lambda points, n: points + b"\x00",
    "index = catalog size": lambda points, n: points + struct.pack(">Idd", n, 1.0, 1.0),
    "index 2**32-1": lambda points, n: struct.pack(">Idd", 2**32 - 1, 1.0, 1.0) + points,
    "NaN timestamp": lambda points, n: points + struct.pack(">Idd", 0, math.nan, 1.0),
    "infinite timestamp": lambda points, n: points + struct.pack(">Idd", 0, math.inf, 1.0),
    "negative timestamp": lambda points, n: points + struct.pack(">Idd", 0, -1.0, 1.0),
    "millisecond timestamp": lambda points, n: points + struct.pack(">Idd", 0, 1.7e12, 1.0),
}


def valid_metrics_v2(n: int, now: float) -> tuple[dict, list, list]:
    """A version 2 body (catalog and points still as Python values), its catalog and its points."""
    host = f"h{n}"
    catalog = [[f"m_{i}", "counter" if i % 2 else "gauge", {"k": f"v{i}"}] for i in range(1 + n % 3)]
    catalog.append(["m_idle", "gauge", {}])  # a series without points is fine
    points = [(i, now - n - i, float(i)) for i in range(len(catalog) - 1)]
    body = {"v": 2, "kind": "metrics", "agent": {"id": host, "host": host, "version": "1"}, "epoch": 1,
            "seq": n, "sent_at": now}  # fmt: skip
    return body, catalog, points


def pack_v2(body: dict, catalog: Any, points: Any) -> bytes:
    body = dict(body)
    body.setdefault("catalog", msgpack.packb(catalog))
    body.setdefault(
        "points", points if type(points) is bytes else b"".join(struct.pack(">Idd", *p) for p in points)
    )
    return msgpack.packb(body)


@st.composite
def entries_v2(draw) -> list[tuple[str, bytes, int]]:
    """Version 2 metrics entries, interleaved with version 1 ones: valid ones, and for every field of
    the batch, of the catalog and of its entries a value it may not hold, damaged points, and bytes."""
    now = time.time()
    out = []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        body, catalog, points = valid_metrics_v2(next(_examples), now)
        out.append(("valid", pack_v2(body, catalog, points), len(points)))
        body, items = valid_metrics(next(_examples), now)
        out.append(("valid", msgpack.packb(body), items))
    for path in V2_MAY_HOLD:
        body, catalog, points = valid_metrics_v2(next(_examples), now)
        put(body, path, draw(ANY.filter(lambda v, path=path: not V2_MAY_HOLD[path](v))))
        out.append(("bad", pack_v2(body, catalog, points), 0))
    for key in ("catalog", "points"):  # the field itself: anything but bytes (or missing)
        body, catalog, points = valid_metrics_v2(next(_examples), now)
        value = draw(st.one_of(st.just(None), ANY.filter(lambda v: type(v) is not bytes)))
        if value is None:  # missing: only the other field is there
            other = {
                "catalog": msgpack.packb(catalog),
                "points": b"".join(struct.pack(">Idd", *p) for p in points),
            }
            del other[key]
            out.append(("bad", msgpack.packb({**body, **other}), 0))
        else:
            out.append(("bad", pack_v2({**body, key: value}, catalog, points), 0))
    body, catalog, points = valid_metrics_v2(next(_examples), now)  # the catalog itself: not an array
    out.append(("bad", pack_v2(body, draw(ANY.filter(lambda v: type(v) is not list)), points), 0))
    for path in CATALOG_MAY_HOLD:  # each part of a catalog entry
        body, catalog, points = valid_metrics_v2(next(_examples), now)
        put(catalog, (0, *path), draw(ANY.filter(lambda v, path=path: not CATALOG_MAY_HOLD[path](v))))
        out.append(("bad", pack_v2(body, catalog, points), 0))
    body, catalog, points = valid_metrics_v2(next(_examples), now)  # catalog bytes that are not msgpack
    out.append(("bad", pack_v2({**body, "catalog": msgpack.packb(catalog) + draw(st.binary(min_size=1, max_size=4))},
                               catalog, points), 0))  # fmt: skip
    for damage in POINT_DAMAGE.values():
        body, catalog, points = valid_metrics_v2(next(_examples), now)
        raw = b"".join(struct.pack(">Idd", *p) for p in points)
        out.append(("bad", pack_v2(body, catalog, damage(raw, len(catalog))), 0))
    for data in draw(st.lists(st.binary(max_size=64), min_size=1, max_size=3)):
        out.append(("bad", data, 0))
    return draw(st.permutations(out))


@st.composite
def entries(draw, kind: str) -> list[tuple[str, bytes, int]]:
    """Entries for the `kind` stream, interleaved: valid ones ("valid", bytes, items) and, for every
    field, one whose field holds a value it may not ("bad", bytes, 0), plus invalid UTF-8 and random bytes.
    """
    make = valid_metrics if kind == "metrics" else valid_logs
    now = time.time()
    out = []
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        body, items = make(next(_examples), now)
        out.append(("valid", msgpack.packb(body), items))
    for path in mutation_paths(kind):
        body, _ = make(next(_examples), now)
        put(body, path, draw(ANY.filter(lambda v, path=path: not may_hold(kind, path, v))))
        out.append(("bad", msgpack.packb(body), 0))
    for path in [("agent", "id"), ("agent", "host")]:  # a string whose bytes are not UTF-8
        body, _ = make(next(_examples), now)
        put(body, path, "\u2603" * 3)
        out.append(("bad", msgpack.packb(body).replace("\u2603".encode() * 3, b"\xff\xfe\xfd" * 3), 0))
    if kind == "logs":  # a record key that is not a string
        body, _ = make(next(_examples), now)
        body["logs"][0][b"raw"] = 1
        out.append(("bad", msgpack.packb(body), 0))
    for data in draw(st.lists(st.binary(max_size=64), min_size=1, max_size=3)):
        out.append(("bad", data, 0))
    return draw(st.permutations(out))


def stored_samples(hosts: list[str]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM monitoring_sample s JOIN monitoring_series r ON r.id = s.series_id "
            "JOIN monitoring_host h ON h.id = r.host_id WHERE h.agent_id = ANY(%s)",
            [hosts],
        )
        return cursor.fetchone()[0]


def stored_records(hosts: list[str]) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM logs_entry WHERE host = ANY(%s)", [hosts])
        return cursor.fetchone()[0]


def run(redis_client, kind: str, entries: list[tuple[str, bytes, int]]) -> None:
    """Add `entries` to a fresh stream, drain it with the real consumer, check the invariant."""
    os.environ["FLEETWATCH_STREAM_PREFIX"] = prefix = f"prop{next(_examples)}"
    key = streams.stream_key(kind, prefix)
    ids = {"valid": set(), "bad": set()}
    hosts = []
    for outcome, data, _ in entries:
        entry_id = redis_client.xadd(key, {"b": data})
        ids[outcome].add(entry_id)
        if outcome == "valid":
            hosts.append(msgpack.unpackb(data)["agent"]["id"])
    handler = MetricsHandler() if kind == "metrics" else LOGS_HANDLER
    StreamConsumer(redis_client, kind, handler, consumer="c", chunk=7, block_ms=0).drain(max_seconds=60)
    dead = redis_client.xrange(streams.stream_key(streams.DEAD_LETTER, prefix))
    assert {fields[b"entry"] for _, fields in dead} == ids["bad"]
    assert all(fields[b"reason"] for _, fields in dead)
    assert redis_client.xpending(key, "ingest")["pending"] == 0
    expected = sum(items for outcome, _, items in entries if outcome == "valid")
    assert (stored_samples if kind == "metrics" else stored_records)(hosts) == expected


# No shrinking: each example drains real streams, and the failing example is readable as it is.
PROPERTY = settings(
    phases=[Phase.explicit, Phase.generate],
    database=None,
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@PROPERTY
@given(batch=entries("metrics"))
def test_metrics_entries_are_stored_once_or_dead_lettered(redis_client, batch):
    run(redis_client, "metrics", batch)


@PROPERTY
@given(batch=entries("logs"))
def test_logs_entries_are_stored_once_or_dead_lettered(redis_client, batch):
    run(redis_client, "logs", batch)


@PROPERTY
@given(batch=entries_v2())
def test_metrics_v2_entries_are_stored_once_or_dead_lettered(redis_client, batch):
    run(redis_client, "metrics", batch)
