"""Turn lines of a tailed file into logs-batch records.

JSON files: each line starting with ``{`` is one record; such a line that is not valid JSON
(or not an object) is rejected with its reason and counted, and the lines around it are
unaffected. A line that does not start with ``{`` (a traceback printed to the same file)
continues the previous record's message, or is shipped as a plain-text record when no record
precedes it in the same read.

Text files: a line matching ``multiline_start`` (default: the file's ``pattern``) starts a
record; any other line (``Traceback ...``, ``  File ...``) is joined to the record before it.
Named groups ``timestamp``, ``level`` and ``message`` fill those fields; other named groups go
to ``attrs``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.logs.config import FileSource
from agent.logs.lines import RawLine
from shared.jsonlog import normalise_level, parse_timestamp, wire_record

_JSON_START = re.compile(r"^\s*\{")
_LEVEL_IN_JSON = re.compile(r'"level(?:name)?"\s*:\s*"(\w+)"')


@dataclass(slots=True)
class Parsed:
    """Records parsed from some lines, with what was rejected or repaired on the way."""

    records: list[dict[str, Any]]
    rejected: list[str]
    truncated: int = 0
    invalid_utf8: int = 0


def start_matcher(source: FileSource) -> Callable[[str], bool]:
    """Return the test for 'this line starts a new record'."""
    if source.multiline_start is not None:
        return lambda line: source.multiline_start.search(line) is not None  # type: ignore[union-attr]
    if source.format == "json":
        return lambda line: _JSON_START.match(line) is not None
    pattern = source.pattern
    return lambda line: pattern.match(line) is not None  # type: ignore[union-attr]


def group_lines(lines: list[RawLine], is_start: Callable[[str], bool]) -> list[list[RawLine]]:
    """Group lines into records: each starting line with the continuation lines after it."""
    groups: list[list[RawLine]] = []
    for line in lines:
        if not line.text.strip() and not groups:
            groups.append([line])  # a blank line on its own is dropped by parse
        elif groups and not is_start(line.text) and groups[-1][0].text.strip():
            groups[-1].append(line)
        else:
            groups.append([line])
    return groups


def parse_groups(groups: list[list[RawLine]], source: FileSource, path: str, max_record_bytes: int) -> Parsed:
    """Parse grouped lines into records (blank lines are skipped, bad JSON is rejected)."""
    out = Parsed([], [])
    now = time.time()
    for group in groups:
        out.truncated += sum(1 for line in group if line.original_bytes is not None)
        out.invalid_utf8 += sum(1 for line in group if line.invalid_utf8)
        first = group[0]
        if not first.text.strip():
            continue
        if source.format == "json" and _JSON_START.match(first.text):
            record, reason = _json_record(first, source, now)
        else:
            record, reason = _text_record(first, source, now), None
        if record is None:
            out.rejected.append(f"{path} at byte {first.start}: {reason}")
            continue
        _append_continuation(record, group[1:], max_record_bytes)
        attrs = record.setdefault("attrs", {})
        attrs["file"] = path
        if first.original_bytes is not None:
            attrs["truncated"] = True
            attrs["original_bytes"] = first.original_bytes
        if any(line.invalid_utf8 for line in group):
            attrs["invalid_utf8"] = True
        out.records.append(record)
    return out


def _json_record(line: RawLine, source: FileSource, now: float) -> tuple[dict[str, Any] | None, str | None]:
    if line.original_bytes is not None:
        # A cut JSON line cannot be parsed; keep its start as text so the event is not lost.
        level = _LEVEL_IN_JSON.search(line.text)
        record = {
            "ts": now,
            "level": normalise_level(level.group(1) if level else "INFO"),
            "message": line.text,
        }
        if source.service:
            record["service"] = source.service
        return record, None
    try:
        entry = json.loads(line.text)
    except json.JSONDecodeError as exc:
        return None, f"malformed JSON ({exc.msg} at column {exc.colno})"
    if not isinstance(entry, dict):
        return None, f"JSON {type(entry).__name__} where an object was expected"
    return wire_record(entry, service=source.service or None, now=now), None


def _text_record(line: RawLine, source: FileSource, now: float) -> dict[str, Any]:
    match = source.pattern.match(line.text) if source.pattern is not None else None
    record: dict[str, Any] = {"ts": now, "level": "INFO", "message": line.text}
    if match is not None:
        groups = match.groupdict()
        ts = parse_timestamp(groups.pop("timestamp", None))
        record["ts"] = ts if ts is not None else now
        record["level"] = normalise_level(groups.pop("level", None) or "INFO")
        record["message"] = groups.pop("message", None) or ""
        attrs = {k: v for k, v in groups.items() if v is not None}
        if attrs:
            record["attrs"] = attrs
    if source.service:
        record["service"] = source.service
    return record


def _append_continuation(record: dict[str, Any], rest: list[RawLine], max_record_bytes: int) -> None:
    if not rest:
        return
    message = "\n".join([record["message"], *(line.text for line in rest)])
    if len(message.encode("utf-8")) > max_record_bytes:
        original = len(message.encode("utf-8"))
        message = message.encode("utf-8")[:max_record_bytes].decode("utf-8", errors="ignore")
        attrs = record.setdefault("attrs", {})
        attrs["truncated"] = True
        attrs["original_bytes"] = original
    record["message"] = message
