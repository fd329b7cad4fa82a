"""The batch format agents push to Redis streams (see docs/wire-format.md).

A batch is one msgpack map. Version 1:

    {
      "v": 1,
      "kind": "metrics" | "logs",
      "agent": {"id": str, "host": str, "version": str,
                "labels": {str: str}},   # optional host labels (env, region, ...)
      "epoch": int,          # agent sequence epoch (ms since 1970 when this sequence began)
      "seq": int,            # monotonically increasing within (agent id, epoch)
      "sent_at": float,      # seconds since 1970, UTC
      "series": [            # kind "metrics"
        {"name": str, "type": "gauge" | "counter",
         "labels": {str: str}, "points": [[float ts, float value], ...]}
      ],
      "logs": [              # kind "logs"
        {"ts": float, "level": str, "message": str, ...optional fields}
      ]
    }

Version 2 (kind "metrics" only, shared/wire_v2.py) replaces "series" by "catalog" (the series'
names, types and labels as one msgpack bin) and "points" (fixed-width binary records); decoding
it fills `Batch.catalog` and `Batch.points` instead of `Batch.series`.

The identity of a batch is (agent id, epoch, seq): the workers store it in the same
transaction as the batch's rows, so a batch delivered twice is stored once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import msgpack

WIRE_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1, 2})
KINDS = frozenset({"metrics", "logs"})
GAUGE = "gauge"
COUNTER = "counter"
METRIC_TYPES = frozenset({GAUGE, COUNTER})
# \Z, not $: "$" also matches before a final newline, and "up\n" is no metric name.
METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*\Z")
MAX_BATCH_BYTES = 16 * 1024 * 1024
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Timestamps are seconds; anything from year 5138 on is milliseconds or microseconds sent by mistake.
MAX_TIMESTAMP = 1e11
# Integers stored in Postgres bigint columns (epoch, seq).
MAX_INT64 = 2**63 - 1
# Text lengths of the columns they are stored in (monitoring_host, monitoring_series, ...).
MAX_AGENT_ID_CHARS = 200
MAX_HOST_CHARS = 255
MAX_VERSION_CHARS = 50
MAX_METRIC_NAME_CHARS = 200
# Maps and lists nested deeper than this in a log record are refused (JSON encoders recurse).
MAX_NESTING = 32
# How much of an offending value an error message quotes.
QUOTE_CHARS = 80
LOG_NAME_FIELDS = ("service", "logger", "request_id", "trace_id", "span_id")


class WireError(ValueError):
    """A batch cannot be decoded; the message says why."""


@dataclass(slots=True)
class Series:
    name: str
    type: str
    labels: dict[str, str]
    points: list[list[float]]


@dataclass(slots=True)
class Batch:
    kind: str
    agent_id: str
    host: str
    agent_version: str
    epoch: int
    seq: int
    sent_at: float
    series: list[Series] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)
    version: int = WIRE_VERSION
    host_labels: dict[str, str] = field(default_factory=dict)
    # Version 2: the validated series catalog (shared.wire_v2.Catalog) and the points as a numpy
    # structured array (fields i, ts, v); `series` stays empty.
    catalog: Any = None
    points: Any = None
    # Filled by the ingest handler: rows it stored, and what it refused by reason (per-host limits).
    stored: int = 0
    refused: dict[str, int] | None = None

    def refuse(self, reason: str, count: int = 1) -> None:
        """Note `count` items of this batch refused for `reason`."""
        if self.refused is None:
            self.refused = {}
        self.refused[reason] = self.refused.get(reason, 0) + count

    @property
    def identity(self) -> tuple[str, int, int]:
        return (self.agent_id, self.epoch, self.seq)

    def sample_count(self) -> int:
        if self.points is not None:
            return len(self.points)
        return sum(len(s.points) for s in self.series)

    def all_series(self) -> list[Series]:
        """The series of this batch as version 1 objects, whatever its version (tests, tools)."""
        if self.catalog is None:
            return self.series
        out = [
            Series(name, mtype, labels, [])
            for name, mtype, labels in zip(
                self.catalog.names, self.catalog.types, self.catalog.labels, strict=True
            )
        ]
        for index, ts, value in self.points.tolist():
            out[index].points.append([ts, value])
        return out


def series_dict(
    name: str, value_points: list[list[float]], labels: dict[str, str] | None = None, type: str = GAUGE
) -> dict[str, Any]:
    """Build one series entry of a metrics batch."""
    return {"name": name, "type": type, "labels": labels or {}, "points": value_points}


def encode_batch(
    *,
    kind: str,
    agent_id: str,
    host: str,
    agent_version: str,
    epoch: int,
    seq: int,
    sent_at: float,
    series: list[dict[str, Any]] | None = None,
    logs: list[dict[str, Any]] | None = None,
    host_labels: dict[str, str] | None = None,
    version: int = WIRE_VERSION,
) -> bytes:
    """Return the msgpack bytes of one batch (`version` 2: a metrics batch in wire format 2)."""
    if version == 2:
        from shared import wire_v2

        if kind != "metrics":
            raise ValueError("wire version 2 is for metrics batches only")
        return wire_v2.encode_metrics(
            agent_id=agent_id,
            host=host,
            agent_version=agent_version,
            epoch=epoch,
            seq=seq,
            sent_at=sent_at,
            series=series or [],
            host_labels=host_labels,
        )
    agent: dict[str, Any] = {"id": agent_id, "host": host, "version": agent_version}
    if host_labels:
        agent["labels"] = host_labels
    body: dict[str, Any] = {
        "v": WIRE_VERSION,
        "kind": kind,
        "agent": agent,
        "epoch": epoch,
        "seq": seq,
        "sent_at": sent_at,
    }
    if kind == "metrics":
        body["series"] = series or []
    else:
        body["logs"] = logs or []
    return msgpack.packb(body, use_bin_type=True)


def decode_batch(data: bytes) -> Batch:
    """Decode and validate one batch, raising WireError with a specific reason.

    Total: whatever `data` holds, this returns a well-typed Batch or raises WireError.
    """
    if type(data) is not bytes:
        raise WireError(f"batch must be bytes, got {type(data).__name__}")
    if len(data) > MAX_BATCH_BYTES:
        raise WireError(f"batch of {len(data)} bytes exceeds the {MAX_BATCH_BYTES}-byte limit")
    try:
        body = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types
        raise WireError(f"not valid msgpack: {exc.__class__.__name__}: {_quote(str(exc))}") from None
    try:
        return _decode_body(body)
    except WireError:
        raise
    except Exception as exc:  # a case the checks above missed must still end as a reason, not a crash
        raise WireError(f"malformed batch: {exc.__class__.__name__}: {_quote(str(exc))}") from None


def _decode_body(body: Any) -> Batch:
    if type(body) is not dict:
        raise WireError(f"batch must be a map, got {type(body).__name__}")
    version = body.get("v")
    if type(version) is not int or version not in SUPPORTED_VERSIONS:
        raise WireError(
            f"unsupported wire version {_quote(version)} (supported: {sorted(SUPPORTED_VERSIONS)})"
        )
    kind = body.get("kind")
    if type(kind) is not str or kind not in KINDS:
        raise WireError(f"unknown batch kind {_quote(kind)} (expected one of {sorted(KINDS)})")
    agent = body.get("agent")
    if type(agent) is not dict:
        raise WireError("missing 'agent' map")
    agent_id = _text(agent.get("id"), "agent.id", MAX_AGENT_ID_CHARS)
    host = _text(agent.get("host"), "agent.host", MAX_HOST_CHARS)
    agent_version = agent.get("version", "")
    if type(agent_version) is not str:
        raise WireError("agent.version must be a string")
    _check_text(agent_version, "agent.version", MAX_VERSION_CHARS)
    epoch = _int64(body.get("epoch"), "epoch")
    seq = _int64(body.get("seq"), "seq")
    sent_at = body.get("sent_at")
    if type(sent_at) not in _NUMBER or not 0 <= sent_at < MAX_TIMESTAMP:  # NaN fails this too
        raise WireError(f"'sent_at' must be a finite number of seconds since 1970, got {_quote(sent_at)}")
    host_labels = _host_labels(agent.get("labels"))
    batch = Batch(kind, agent_id, host, agent_version, epoch, seq, float(sent_at), host_labels=host_labels)
    if version == 2:
        if kind != "metrics":
            raise WireError("wire version 2 is for metrics batches only; send logs as version 1")
        from shared import wire_v2

        batch.version = 2
        batch.catalog = wire_v2.decode_catalog(body.get("catalog"))
        batch.points = wire_v2.decode_points(body.get("points"), batch.catalog)
    elif kind == "metrics":
        batch.series = _decode_series(body.get("series"))
    else:
        batch.logs = _decode_logs(body.get("logs"))
    return batch


def _quote(value: Any) -> str:
    """repr() of `value`, cut to QUOTE_CHARS: a reason never carries a 10 MB string."""
    if isinstance(value, dict | list) and len(value) > 8:
        return f"<{type(value).__name__} of {len(value)} items>"
    try:
        text = repr(value)
    except Exception:  # a deeply nested value
        return f"<{type(value).__name__}>"
    return text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS] + "..."


def _text(value: Any, label: str, max_chars: int) -> str:
    if type(value) is not str or not value:
        raise WireError(f"'{label}' must be a non-empty string")
    _check_text(value, label, max_chars)
    return value


def _check_text(value: str, label: str, max_chars: int) -> None:
    if len(value) > max_chars:
        raise WireError(f"'{label}' is {len(value)} characters long (limit {max_chars})")
    if "\x00" in value:
        raise WireError(f"'{label}' contains a NUL character")


def _int64(value: Any, key: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_INT64:
        raise WireError(f"'{key}' must be a non-negative integer below 2**63, got {_quote(value)}")
    return value


def _host_labels(labels: Any) -> dict[str, str]:
    if labels is None:
        return {}
    if type(labels) is not dict:
        raise WireError("agent.labels must map label names to strings")
    for name, value in labels.items():
        if type(name) is not str or not LABEL_NAME_RE.match(name) or type(value) is not str:
            raise WireError(f"agent.labels must map label names to strings, got {_quote(name)}")
        if "\x00" in value:
            raise WireError(f"agent.labels[{name!r}] contains a NUL character")
    return labels


# Names and label-name tuples already validated: agents repeat them in every batch.
_valid_names: set[str] = set()
_valid_label_keys: set[tuple[str, ...]] = set()
_CACHE_LIMIT = 200_000
_NUMBER = (int, float)


def _decode_series(raw: Any) -> list[Series]:
    if type(raw) is not list:
        raise WireError("metrics batch needs a 'series' list")
    valid_names, valid_keys, types, number = _valid_names, _valid_label_keys, METRIC_TYPES, _NUMBER
    out: list[Series] = []
    append = out.append
    for item in raw:
        if type(item) is not dict:
            raise WireError(f"series entry must be a map, got {type(item).__name__}")
        name = item.get("name")
        mtype = item.get("type", GAUGE)
        labels = item.get("labels")
        if labels is None:
            labels = {}
        points = item.get("points")
        if (
            type(name) is not str
            or type(mtype) is not str
            or type(labels) is not dict
            or type(points) is not list
            or name not in valid_names
            or mtype not in types
            or tuple(labels) not in valid_keys
        ):
            _check_series(item)
        for value in labels.values():
            if type(value) is not str or "\x00" in value:
                raise WireError(f"series {name!r}: label values must be strings without NUL")
        try:
            for point in points:
                # A list of two (msgpack arrays decode as lists): two bytes of a bin value would
                # unpack into two integers.
                if type(point) is not list:
                    raise WireError(f"series {name!r} has a point that is not [timestamp, value]")
                ts, value = point
                if type(ts) not in number or type(value) not in number:
                    raise WireError(f"series {name!r} has a point that is not [timestamp, value]")
                if not 0 <= ts < MAX_TIMESTAMP:  # NaN fails this too
                    raise WireError(f"series {name!r} has timestamp {_quote(ts)}: not seconds since 1970")
        except (TypeError, ValueError) as exc:  # not a pair: a scalar, a map, three items
            if isinstance(exc, WireError):
                raise
            raise WireError(f"series {name!r} has a point that is not [timestamp, value]") from None
        append(Series(name, mtype, labels, points))
    return out


def _check_series(item: dict[str, Any]) -> None:
    """Validate one series in detail, raising the specific error; remember what passed."""
    name = item.get("name")
    if type(name) is not str or not METRIC_NAME_RE.match(name):
        raise WireError(f"series name {_quote(name)} is not a valid metric name")
    if len(name) > MAX_METRIC_NAME_CHARS:
        raise WireError(f"series name is {len(name)} characters long (limit {MAX_METRIC_NAME_CHARS})")
    mtype = item.get("type", GAUGE)
    if type(mtype) is not str or mtype not in METRIC_TYPES:
        raise WireError(f"series {name!r}: type {_quote(mtype)} must be 'gauge' or 'counter'")
    labels = item.get("labels")
    if labels is None:
        labels = {}
    if type(labels) is not dict:
        raise WireError(f"series {name!r}: labels must map label names to strings")
    keys = tuple(labels)
    if not all(type(k) is str and LABEL_NAME_RE.match(k) for k in keys):
        raise WireError(f"series {name!r}: invalid label name in {_quote(list(keys))}")
    points = item.get("points")
    if type(points) is not list:
        raise WireError(f"series {name!r}: points must be a list of [timestamp, value]")
    _remember(_valid_names, name)
    _remember(_valid_label_keys, keys)


def _remember(cache: set, value: Any) -> None:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache.add(value)


def _decode_logs(raw: Any) -> list[dict[str, Any]]:
    if type(raw) is not list:
        raise WireError("logs batch needs a 'logs' list")
    field_types = _LOG_FIELD_TYPES
    for index, record in enumerate(raw):
        if type(record) is not dict:
            raise WireError(f"logs[{index}] must be a map")
        ts = record.get("ts")
        if type(ts) not in _NUMBER or not 0 <= ts < MAX_TIMESTAMP:  # NaN fails this too
            raise WireError(f"logs[{index}].ts must be seconds since 1970, got {_quote(ts)}")
        if type(record.get("message")) is not str:
            raise WireError(f"logs[{index}].message must be a string")
        for key, value in record.items():
            kind = type(value)
            if key in field_types and kind not in field_types[key]:
                raise WireError(f"logs[{index}].{key} must be {_LOG_FIELD_WORDS[key]}, got {_quote(value)}")
            if (kind is dict or kind is list) and nested_too_deep(value):
                raise WireError(f"logs[{index}].{key!s:.80} is nested more than {MAX_NESTING} levels deep")
            if type(key) is not str:
                raise WireError(f"logs[{index}] has a key that is not a string: {_quote(key)}")
    return raw


_CONTAINERS = (dict, list)
_NAME_TYPES = (str, int, type(None))
# The known fields of a log record and the types each may hold (ts and message are checked above).
_LOG_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "level": (str, int, type(None)),
    "host": (str, type(None)),
    "attrs": (dict, type(None)),
    **{name: _NAME_TYPES for name in LOG_NAME_FIELDS},
}
_LOG_FIELD_WORDS = {
    "level": "a level name or number",
    "host": "a string",
    "attrs": "a map",
    **{name: "a string" for name in LOG_NAME_FIELDS},
}


def nested_too_deep(value: Any, limit: int = MAX_NESTING) -> bool:
    """Whether maps and lists in `value` nest deeper than `limit` (iterative: no recursion)."""
    for child in value.values() if type(value) is dict else value:
        if type(child) is dict or type(child) is list:
            break
    else:  # the common case: one map or list of scalars
        return limit < 1
    stack = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if depth > limit:
            return True
        children = current.values() if type(current) is dict else current
        stack.extend((child, depth + 1) for child in children if type(child) in _CONTAINERS)
    return False
