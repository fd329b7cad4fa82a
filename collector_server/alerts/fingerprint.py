"""Alertmanager's identifiers: the label-set fingerprint and the group key.

The fingerprint is Prometheus' ``LabelSet.Fingerprint()``: FNV-1a (64 bit) over the label
names in sorted order, each name and value followed by the separator byte 0xff, printed as
16 hex digits. The group key is the route's key (``{}`` for the root route, a child adds
``/{matchers}``) followed by ``:`` and the group labels as ``{name="value", ...}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

FNV_OFFSET = 14695981039346656037
FNV_PRIME = 1099511628211
SEPARATOR = 0xFF
MASK = (1 << 64) - 1
ROOT_ROUTE_KEY = "{}"


def _add(value: int, data: bytes) -> int:
    for byte in data:
        value = ((value ^ byte) * FNV_PRIME) & MASK
    return value


def label_fingerprint(labels: Mapping[str, object]) -> str:
    """Return the 16-hex-digit fingerprint Alertmanager gives this label set."""
    value = FNV_OFFSET
    for name in sorted(labels):
        value = _add(value, name.encode())
        value = _add(value, bytes([SEPARATOR]))
        value = _add(value, str(labels[name]).encode())
        value = _add(value, bytes([SEPARATOR]))
    return f"{value:016x}"


def label_set_text(labels: Mapping[str, object]) -> str:
    """Return ``{a="1", b="2"}``: Prometheus' LabelSet.String(), names sorted, values quoted."""
    inner = ", ".join(f"{k}={json.dumps(str(labels[k]), ensure_ascii=False)}" for k in sorted(labels))
    return "{" + inner + "}"


def group_key(group_labels: Mapping[str, object], route_key: str = ROOT_ROUTE_KEY) -> str:
    """Return Alertmanager's group key, e.g. ``{}:{alertname="HighCPU"}``."""
    return f"{route_key}:{label_set_text(group_labels)}"
