"""Label matchers shared by rule queries, silences and inhibition.

A matcher is ``{"name": "host", "op": "=", "value": "web-1"}`` with op one of
``=``, ``!=``, ``=~`` (full regex match), ``!~``. A plain mapping ``{"host": "web-1"}``
is accepted as shorthand for equality matchers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from shared.labels import labels_key as shared_labels_key

OPS = ("=", "!=", "=~", "!~")


def normalize(raw: Any) -> list[dict[str, str]]:
    """Return matchers as a list of dicts; raise ValueError naming what is wrong."""
    if raw in (None, "", [], {}):
        return []
    if isinstance(raw, Mapping):
        raw = [{"name": k, "op": "=", "value": v} for k, v in raw.items()]
    if not isinstance(raw, list):
        raise ValueError("matchers must be a list of {name, op, value} or a {label: value} mapping")
    out = []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping) or not item.get("name"):
            raise ValueError(f"matcher #{index + 1} needs a 'name'")
        op = item.get("op", "=")
        if op not in OPS:
            raise ValueError(f"matcher #{index + 1} has unknown op {op!r} (use one of {', '.join(OPS)})")
        value = str(item.get("value", ""))
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"matcher #{index + 1} has an invalid regex {value!r}: {exc}") from None
        out.append({"name": str(item["name"]), "op": op, "value": value})
    return out


def matches(matchers: list[dict[str, str]], labels: Mapping[str, Any]) -> bool:
    """Return True when every matcher accepts the labels (a missing label reads as "")."""
    for m in matchers:
        actual = str(labels.get(m["name"], ""))
        op, value = m["op"], m["value"]
        if op == "=" and actual != value:
            return False
        if op == "!=" and actual == value:
            return False
        if op == "=~" and not re.fullmatch(value, actual):
            return False
        if op == "!~" and re.fullmatch(value, actual):
            return False
    return True


labels_key = shared_labels_key  # the one canonical form, shared with ingest
