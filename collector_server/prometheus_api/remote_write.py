"""Prometheus remote write 1.0: a snappy-compressed protobuf WriteRequest turned into batches.

Each series goes to the host named by its `host` label, else its `instance` label (the
port removed), else DEFAULT_HOST. `__name__` becomes the series name; the other labels
are kept. Staleness markers (a special NaN Prometheus writes when a target goes away)
carry no value: they are skipped and counted.
"""

from __future__ import annotations

import math
import re
import struct
from collections import Counter
from typing import Any

import snappy
from google.protobuf.message import DecodeError

from collector_server.prometheus_api.promql.values import PromQLError
from collector_server.prometheus_api.remote_pb import METRIC_TYPES, WriteRequest
from shared.wire import COUNTER, GAUGE, LABEL_NAME_RE, METRIC_NAME_RE

DEFAULT_HOST = "remote-write"
STALE_NAN_BITS = 0x7FF0000000000002
COUNTER_SUFFIXES = ("_total", "_count", "_sum", "_bucket")
_PORT = re.compile(r":\d+$")


def decode(body: bytes) -> Any:
    """Uncompress and parse a WriteRequest; a 400-worthy PromQLError if it is not one."""
    try:
        raw = snappy.uncompress(body)
    except Exception as exc:  # python-snappy raises several unrelated types for bad input
        raise PromQLError(f"body is not snappy-compressed (block format): {exc}") from None
    try:
        return WriteRequest.FromString(raw)
    except DecodeError as exc:
        raise PromQLError(f"body is not a remote write WriteRequest: {exc}") from None


def is_stale(value: float) -> bool:
    return math.isnan(value) and struct.unpack(">Q", struct.pack(">d", value))[0] == STALE_NAN_BITS


def host_of(labels: dict[str, str]) -> str:
    if labels.get("host"):
        return labels["host"]
    if labels.get("instance"):
        return _PORT.sub("", labels["instance"]) or DEFAULT_HOST
    return DEFAULT_HOST


def kind_of(name: str, types: dict[str, str]) -> str:
    declared = types.get(name) or types.get(re.sub(r"_(total|count|sum|bucket)$", "", name))
    if declared in ("counter", "histogram", "summary") and name.endswith(COUNTER_SUFFIXES):
        return COUNTER
    if declared == "counter":
        return COUNTER
    if declared:
        return GAUGE
    return COUNTER if name.endswith(COUNTER_SUFFIXES) else GAUGE


def to_series(request: Any, counts: Counter[str]) -> dict[str, list[dict[str, Any]]]:
    """Group the request's series by host, as wire-format series entries."""
    types = {m.metric_family_name: METRIC_TYPES.get(m.type, "unknown") for m in request.metadata}
    by_host: dict[str, list[dict[str, Any]]] = {}
    for number, series in enumerate(request.timeseries):
        labels = {label.name: label.value for label in series.labels if label.value != ""}
        name = labels.pop("__name__", "")
        if not METRIC_NAME_RE.match(name):
            raise PromQLError(f"timeseries {number}: {name!r} is not a valid metric name")
        for label in labels:
            if not LABEL_NAME_RE.match(label):
                raise PromQLError(f"timeseries {number} ({name}): {label!r} is not a valid label name")
        host = host_of(labels)
        labels.pop("host", None)
        points = []
        for sample in series.samples:
            if is_stale(sample.value):
                counts["remote_write_stale_markers"] += 1
                continue
            points.append([sample.timestamp / 1000, sample.value])
        if points:
            by_host.setdefault(host, []).append(
                {"name": name, "type": kind_of(name, types), "labels": labels, "points": points}
            )
            counts["remote_write_samples_queued"] += len(points)
    return by_host
