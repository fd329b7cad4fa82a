"""The canonical text form of a label set, used as the identity of series and alert groups."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _escape(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def labels_key(labels: Mapping[str, Any]) -> str:
    """Return 'k=v,k=v' sorted by name, with '\\', ',' and '=' in values escaped.

    Escaping keeps distinct label sets distinct: {a: "1,b=2"} and {a: "1", b: "2"}
    would otherwise both read 'a=1,b=2'.
    """
    return ",".join(f"{k}={_escape(labels[k])}" for k in sorted(labels))
