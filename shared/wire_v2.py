"""Wire format version 2 for metrics batches: a series catalog and fixed-width binary points.

A version 2 batch is the same msgpack map as version 1 (``v``, ``kind``, ``agent``, ``epoch``,
``seq``, ``sent_at``; see shared/wire.py) with, instead of ``series``:

    "catalog": bin   # msgpack array of the batch's series, each [name, type, {label: value}]
    "points":  bin   # N records of 20 bytes, big-endian: uint32 series index into the catalog,
                     # float64 timestamp (seconds since 1970), float64 value

The catalog is carried as opaque bytes so a worker never decodes it twice: an agent sends the same
series in the same order every cycle, so the catalog's bytes repeat, and the worker keys both the
validated catalog (here) and the series ids it resolved (alerting_worker/ingest/metrics_handler.py)
by those bytes. The points are validated and stored as arrays (numpy), never as per-sample Python
objects. Version 2 is for kind "metrics" only; logs stay version 1.

Every batch carries its whole catalog (the stream is one-way: a batch that only referred to a catalog
sent earlier would be unreadable once that earlier batch was lost, trimmed, dead-lettered or stored
by another worker still in flight). See docs/wire-format.md, "Version 2".

This module imports numpy only to decode (workers); the agent's encoder needs only struct.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgpack

if TYPE_CHECKING:
    import numpy as np

VERSION = 2
POINT = struct.Struct(">Idd")
POINT_BYTES = POINT.size  # 20
# Validated catalogs kept per worker process, bounded by their total size.
CACHE_BYTES_LIMIT = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Catalog:
    """A validated series catalog: `raw` is its exact bytes (the cache key)."""

    raw: bytes
    names: tuple[str, ...]
    types: tuple[str, ...]
    labels: tuple[dict[str, str], ...]

    def __len__(self) -> int:
        return len(self.names)


def point_dtype() -> np.dtype:
    import numpy as np

    return np.dtype([("i", ">u4"), ("ts", ">f8"), ("v", ">f8")])


# --- encoding (agents, third-party producers) -------------------------------------------------


class Encoder:
    """Build version 2 metrics batches; re-uses the catalog's bytes while the series stay the same."""

    def __init__(self) -> None:
        self._shape: list[tuple[str, str, dict[str, str]]] = []
        self._catalog = msgpack.packb([], use_bin_type=True)

    def catalog(self, series: list[dict[str, Any]]) -> bytes:
        shape = [(s["name"], s.get("type", "gauge"), s.get("labels") or {}) for s in series]
        if shape != self._shape:
            self._shape = [
                (name, mtype, dict(labels)) for name, mtype, labels in shape
            ]  # a copy: callers may reuse
            self._catalog = msgpack.packb([list(entry) for entry in self._shape], use_bin_type=True)
        return self._catalog

    def encode(
        self,
        *,
        agent_id: str,
        host: str,
        agent_version: str,
        epoch: int,
        seq: int,
        sent_at: float,
        series: list[dict[str, Any]],
        host_labels: dict[str, str] | None = None,
    ) -> bytes:
        """Return the msgpack bytes of one version 2 metrics batch of `series` (version 1 series maps)."""
        flat: list[float] = []
        for index, s in enumerate(series):
            for ts, value in s["points"]:
                flat += (index, ts, value)
        points = _points_struct(len(flat) // 3).pack(*flat)
        agent: dict[str, Any] = {"id": agent_id, "host": host, "version": agent_version}
        if host_labels:
            agent["labels"] = host_labels
        body = {
            "v": VERSION,
            "kind": "metrics",
            "agent": agent,
            "epoch": epoch,
            "seq": seq,
            "sent_at": sent_at,
            "catalog": self.catalog(series),
            "points": points,
        }
        return msgpack.packb(body, use_bin_type=True)


_POINT_STRUCTS: dict[int, struct.Struct] = {}


def _points_struct(count: int) -> struct.Struct:
    """One struct for `count` point records (an agent sends the same count every cycle)."""
    found = _POINT_STRUCTS.get(count)
    if found is None:
        if len(_POINT_STRUCTS) > 64:
            _POINT_STRUCTS.clear()
        found = _POINT_STRUCTS[count] = struct.Struct(">" + "Idd" * count)
    return found


def encode_metrics(**fields: Any) -> bytes:
    """One version 2 metrics batch (same keyword arguments as Encoder.encode)."""
    return Encoder().encode(**fields)


def readable(data: bytes) -> dict[str, Any]:
    """The batch as plain values for printing (`fleetwatch-agent --once --print`), any version.

    Version 2: `catalog` as its array, `points` as [index, ts, value] triples. No validation.
    """
    body = msgpack.unpackb(data, raw=False)
    if body.get("v") == VERSION:
        body["catalog"] = msgpack.unpackb(body["catalog"], raw=False)
        raw = body["points"]
        body["points"] = [list(POINT.unpack_from(raw, at)) for at in range(0, len(raw), POINT_BYTES)]
    return body


def series_maps(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The series of a `readable` batch as version 1 series maps (name, type, labels, points)."""
    if body.get("v") != VERSION:
        return body["series"]
    out = [{"name": n, "type": t, "labels": labels, "points": []} for n, t, labels in body["catalog"]]
    for index, ts, value in body["points"]:
        out[index]["points"].append([ts, value])
    return out


# --- decoding (workers) -----------------------------------------------------------------------

_catalogs: dict[bytes, Catalog] = {}
_cached_bytes = 0


def decode_catalog(raw: Any) -> Catalog:
    """Return the validated catalog of these bytes (cached by the bytes), or raise WireError."""
    found = _catalogs.get(raw) if type(raw) is bytes else None
    if found is not None:
        return found
    catalog = _parse_catalog(raw)
    global _cached_bytes
    if _cached_bytes + len(raw) > CACHE_BYTES_LIMIT:
        _catalogs.clear()
        _cached_bytes = 0
    _catalogs[raw] = catalog
    _cached_bytes += len(raw)
    return catalog


def _parse_catalog(raw: Any) -> Catalog:
    from shared.wire import (
        LABEL_NAME_RE,
        MAX_METRIC_NAME_CHARS,
        METRIC_NAME_RE,
        METRIC_TYPES,
        WireError,
        _quote,
    )

    if type(raw) is not bytes:
        raise WireError(f"'catalog' must be bytes (msgpack bin) holding a msgpack array, got {_quote(raw)}")
    try:
        entries = msgpack.unpackb(raw, raw=False, strict_map_key=True)
    except Exception as exc:
        raise WireError(
            f"'catalog' is not valid msgpack: {exc.__class__.__name__}: {_quote(str(exc))}"
        ) from None
    if type(entries) is not list:
        raise WireError(f"'catalog' must hold an array of [name, type, labels], got {type(entries).__name__}")
    names, types, labels_of = [], [], []
    for index, entry in enumerate(entries):
        if type(entry) is not list or len(entry) != 3:
            raise WireError(f"catalog[{index}] must be [name, type, labels], got {_quote(entry)}")
        name, mtype, labels = entry
        if type(name) is not str or not METRIC_NAME_RE.match(name):
            raise WireError(f"catalog[{index}]: series name {_quote(name)} is not a valid metric name")
        if len(name) > MAX_METRIC_NAME_CHARS:
            raise WireError(f"catalog[{index}]: series name is {len(name)} characters long (limit 200)")
        if type(mtype) is not str or mtype not in METRIC_TYPES:
            raise WireError(f"catalog[{index}] ({name}): type {_quote(mtype)} must be 'gauge' or 'counter'")
        if type(labels) is not dict:
            raise WireError(f"catalog[{index}] ({name}): labels must map label names to strings")
        for key, value in labels.items():
            if type(key) is not str or not LABEL_NAME_RE.match(key):
                raise WireError(f"catalog[{index}] ({name}): invalid label name {_quote(key)}")
            if type(value) is not str or "\x00" in value:
                raise WireError(f"catalog[{index}] ({name}): label values must be strings without NUL")
        names.append(name)
        types.append(mtype)
        labels_of.append(labels)
    return Catalog(raw, tuple(names), tuple(types), tuple(labels_of))


def decode_points(raw: Any, catalog: Catalog) -> np.ndarray:
    """Return the points as a read-only structured array (fields i, ts, v), or raise WireError.

    Checks, without a Python object per point: whole records, every index within the catalog,
    every timestamp finite and 0 <= ts < 1e11 (values may be anything: non-finite ones are counted
    and left out when stored, as in version 1).
    """
    import numpy as np

    from shared.wire import MAX_TIMESTAMP, WireError, _quote

    if type(raw) is not bytes:
        raise WireError(f"'points' must be bytes (msgpack bin) of 20-byte records, got {_quote(raw)}")
    if len(raw) % POINT_BYTES:
        raise WireError(
            f"'points' is {len(raw)} bytes long: not a whole number of {POINT_BYTES}-byte records"
        )
    global _DTYPE
    if _DTYPE is None:
        _DTYPE = point_dtype()
    points = np.frombuffer(raw, dtype=_DTYPE)
    if not len(points):
        return points
    index = points["i"]
    highest = int(index.max())
    if highest >= len(catalog):
        at = int(np.argmax(index >= len(catalog)))
        raise WireError(
            f"point {at} refers to series index {int(index[at])}; the catalog has {len(catalog)} series"
        )
    ts = points["ts"]
    low, high = ts.min(), ts.max()
    if not (low >= 0 and high < MAX_TIMESTAMP):  # NaN fails this too
        bad = ~((ts >= 0) & (ts < MAX_TIMESTAMP))
        at = int(np.argmax(bad))
        raise WireError(f"point {at} has timestamp {_quote(float(ts[at]))}: not seconds since 1970")
    return points


_DTYPE: Any = None  # numpy is imported on the first decode: an agent never loads it
