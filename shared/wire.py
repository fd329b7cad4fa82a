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

The identity of a batch is (agent id, epoch, seq): the workers store it in the same
transaction as the batch's rows, so a batch delivered twice is stored once.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import msgpack

WIRE_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})
KINDS = frozenset({"metrics", "logs"})
GAUGE = "gauge"
COUNTER = "counter"
METRIC_TYPES = frozenset({GAUGE, COUNTER})
METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
MAX_BATCH_BYTES = 16 * 1024 * 1024
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Timestamps are seconds; anything from year 5138 on is milliseconds or microseconds sent by mistake.
MAX_TIMESTAMP = 1e11


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

    @property
    def identity(self) -> tuple[str, int, int]:
        return (self.agent_id, self.epoch, self.seq)

    def sample_count(self) -> int:
        return sum(len(s.points) for s in self.series)


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
) -> bytes:
    """Return the msgpack bytes of one batch."""
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
    """Decode and validate one batch, raising WireError with a specific reason."""
    if len(data) > MAX_BATCH_BYTES:
        raise WireError(f"batch of {len(data)} bytes exceeds the {MAX_BATCH_BYTES}-byte limit")
    try:
        body = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types
        raise WireError(f"not valid msgpack: {exc.__class__.__name__}: {exc}") from None
    if not isinstance(body, dict):
        raise WireError(f"batch must be a map, got {type(body).__name__}")
    version = body.get("v")
    if version not in SUPPORTED_VERSIONS:
        raise WireError(f"unsupported wire version {version!r} (supported: {sorted(SUPPORTED_VERSIONS)})")
    kind = body.get("kind")
    if kind not in KINDS:
        raise WireError(f"unknown batch kind {kind!r} (expected one of {sorted(KINDS)})")
    agent = body.get("agent")
    if not isinstance(agent, dict):
        raise WireError("missing 'agent' map")
    agent_id = _required_str(agent, "id", "agent.id")
    host = _required_str(agent, "host", "agent.host")
    agent_version = agent.get("version", "")
    if not isinstance(agent_version, str):
        raise WireError("agent.version must be a string")
    epoch = _required_int(body, "epoch")
    seq = _required_int(body, "seq")
    sent_at = body.get("sent_at")
    if not isinstance(sent_at, int | float) or isinstance(sent_at, bool) or not math.isfinite(sent_at):
        raise WireError("'sent_at' must be a finite number of seconds since 1970")
    host_labels = agent.get("labels") or {}
    if not isinstance(host_labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in host_labels.items()
    ):
        raise WireError("agent.labels must map label names to strings")
    batch = Batch(kind, agent_id, host, agent_version, epoch, seq, float(sent_at), host_labels=host_labels)
    if kind == "metrics":
        batch.series = _decode_series(body.get("series"))
    else:
        batch.logs = _decode_logs(body.get("logs"))
    return batch


def _required_str(body: dict[str, Any], key: str, label: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise WireError(f"'{label}' must be a non-empty string")
    return value


def _required_int(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise WireError(f"'{key}' must be a non-negative integer")
    return value


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
        try:
            name = item["name"]
            mtype = item.get("type", GAUGE)
            labels = item.get("labels") or {}
            points = item["points"]
            if name not in valid_names or mtype not in types or tuple(labels) not in valid_keys:
                _check_series(item)
            for value in labels.values():
                if type(value) is not str:
                    raise WireError(f"series {name!r}: label values must be strings")
            for ts, value in points:
                if type(ts) not in number or type(value) not in number:
                    raise WireError(f"series {name!r} has a point that is not [timestamp, value]")
                if not 0 <= ts < MAX_TIMESTAMP:  # NaN fails this too
                    raise WireError(f"series {name!r} has timestamp {ts!r}: not seconds since 1970")
        except WireError:
            raise
        except Exception:  # a missing key, a wrong type: say exactly what
            _check_series(item)
            raise WireError(
                f"series {item.get('name')!r} has a point that is not [timestamp, value]"
            ) from None
        append(Series(name, mtype, labels, points))
    return out


def _check_series(item: Any) -> None:
    """Validate one series in detail, raising the specific error; remember what passed."""
    if type(item) is not dict:
        raise WireError(f"series entry must be a map, got {type(item).__name__}")
    name = item.get("name")
    if not isinstance(name, str) or not METRIC_NAME_RE.match(name):
        raise WireError(f"series name {name!r} is not a valid metric name")
    mtype = item.get("type", GAUGE)
    if mtype not in METRIC_TYPES:
        raise WireError(f"series {name!r}: type {mtype!r} must be 'gauge' or 'counter'")
    labels = item.get("labels") or {}
    if type(labels) is not dict:
        raise WireError(f"series {name!r}: labels must map label names to strings")
    keys = tuple(labels)
    if not all(isinstance(k, str) and LABEL_NAME_RE.match(k) for k in keys):
        raise WireError(f"series {name!r}: invalid label name in {list(keys)!r}")
    points = item.get("points")
    if type(points) is not list:
        raise WireError(f"series {name!r}: points must be a list of [timestamp, value]")
    for point in points:
        if type(point) is not list or len(point) != 2:
            raise WireError(f"series {name!r} has a point that is not [timestamp, value]")
    _remember(_valid_names, name)
    _remember(_valid_label_keys, keys)


def _remember(cache: set, value: Any) -> None:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache.add(value)


def _decode_logs(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise WireError("logs batch needs a 'logs' list")
    for index, record in enumerate(raw):
        if not isinstance(record, dict):
            raise WireError(f"logs[{index}] must be a map")
        ts = record.get("ts")
        if not isinstance(ts, int | float) or isinstance(ts, bool) or not math.isfinite(ts):
            raise WireError(f"logs[{index}].ts must be seconds since 1970")
        if not isinstance(record.get("message"), str):
            raise WireError(f"logs[{index}].message must be a string")
    return raw
