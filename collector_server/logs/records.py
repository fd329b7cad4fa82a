"""Turn one log record (wire format or an imported line) into one COPY row, or say why not.

A record is ``{"ts": epoch seconds, "level": str, "message": str, ...}``; the known
fields become columns, everything else (module, function, line, thread, process,
any extra field, and the optional ``attrs`` map) goes into the ``attrs`` jsonb.
Text is made safe for Postgres: NUL characters become U+FFFD, lone surrogates are
written as ``\\udcXX`` escapes, and messages longer than MAX_MESSAGE_CHARS are cut
(the original length is kept in ``attrs.message_truncated_from``).
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import c_encode_basestring, c_make_encoder  # type: ignore[attr-defined]
from typing import Any

from collector_server.logs import levels
from shared import redaction

MAX_MESSAGE_CHARS = 32 * 1024
MAX_NAME_CHARS = 200
MAX_HOST_CHARS = 255
FUTURE_TOLERANCE_SECONDS = 86_400.0
SECONDS_PER_DAY = 86_400
COLUMNS = (
    "ts",
    "host",
    "service",
    "level",
    "level_no",
    "message",
    "logger",
    "request_id",
    "trace_id",
    "span_id",
    "attrs",
    "organization_id",
)
NAME_FIELDS = ("service", "logger", "request_id", "trace_id", "span_id")
KNOWN_FIELDS = frozenset({"ts", "level", "message", "attrs", "host", *NAME_FIELDS})
TRUNCATED_ATTR = "message_truncated_from"
ATTRS_SIZE = "attrs_size"  # the rejection kind of a record over the per-host attrs limit
QUOTE_CHARS = 80
NULL = "\\N"

_COPY_SPECIAL = re.compile("[\\\\\t\n\r\x00]")
_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False, default=str, separators=(", ", ": "))
# The C encoder behind _JSON, built once: JSONEncoder.encode builds it again on every call, which
# was a third of the cost of encoding a small attrs map. No circular-reference markers: decoded
# batches and JSON lines cannot hold cycles.
_C_ENCODER = (
    c_make_encoder(None, str, c_encode_basestring, None, ": ", ", ", False, False, False)
    if c_make_encoder is not None and c_encode_basestring is not None
    else None
)
_SECOND_TEXT: dict[int, str] = {}
_SECOND_TEXT_MAX = 100_000
LEVEL_TEXT = {name: str(number) for name, number in levels.LEVELS.items()}
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x00": "\ufffd"})


class RecordRejected(ValueError):
    """A record cannot be stored; the message says why, ``kind`` names the reason (a short word)."""

    def __init__(self, message: str, kind: str = "invalid") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Window:
    """The timestamps a record may carry: within retention, not far in the future."""

    oldest: float
    newest: float
    retention_days: int

    @classmethod
    def now(cls, retention_days: int, now: float | None = None) -> Window:
        now = time.time() if now is None else now
        return cls(now - retention_days * SECONDS_PER_DAY, now + FUTURE_TOLERANCE_SECONDS, retention_days)


@dataclass(slots=True)
class Row:
    """One record ready for COPY: its text line and the day partition it lands in."""

    line: str
    day: int
    truncated: bool


def to_row(record: Any, host: str, window: Window, org_text: str, max_attrs_bytes: int = 0) -> Row:
    """Validate `record` and return its COPY line; raise RecordRejected naming the problem.

    ``org_text`` is the organisation id as text: the sending agent's, never the record's own.
    `max_attrs_bytes` (0: no limit) refuses a record whose attrs are larger as JSON (a per-host
    limit: the rejection kind is ATTRS_SIZE).
    """
    if not isinstance(record, dict):
        raise RecordRejected(f"record must be a map, got {type(record).__name__}", "not_a_map")
    ts = _timestamp(record.get("ts"), window)
    raw_level = record.get("level")
    level = (
        raw_level if type(raw_level) is str and raw_level in levels.LEVELS else levels.normalize(raw_level)
    )
    if level is None:
        expected = ", ".join(levels.LEVELS)
        raise RecordRejected(f"unknown level {_quote(raw_level)} (expected one of {expected})", "level")
    message = record.get("message")
    if not isinstance(message, str):
        raise RecordRejected(f"message must be a string, got {type(message).__name__}", "message")
    own_host = record.get("host")
    if isinstance(own_host, str) and own_host:
        host = own_host
    if not host or len(host) > MAX_HOST_CHARS:
        raise RecordRejected(f"host must be 1 to {MAX_HOST_CHARS} characters", "host")
    get = record.get
    names = [get(field) for field in NAME_FIELDS]
    for index, value in enumerate(names):
        # The usual case (a short string, or none) here; anything else through _name's checks.
        if value is not None and (value.__class__ is not str or not 0 < len(value) <= MAX_NAME_CHARS):
            names[index] = _name(record, NAME_FIELDS[index])
    service, logger, request_id, trace_id, span_id = names
    attrs = _attrs(record)
    message, attrs = redaction.redact_record(message, attrs)  # every producer's records (docs/security.md)
    truncated = len(message) > MAX_MESSAGE_CHARS
    if truncated:
        attrs[TRUNCATED_ATTR] = len(message)
        message = message[:MAX_MESSAGE_CHARS]
    fields = [
        host,
        service or "",
        message,
        logger or "",
        request_id or "",
        trace_id or "",
        span_id or "",
        _attrs_json(attrs),
    ]
    if (
        max_attrs_bytes
        and len(fields[-1]) > max_attrs_bytes // 4
        and len(fields[-1].encode()) > max_attrs_bytes
    ):
        raise RecordRejected(
            f"attrs take {len(fields[-1].encode())} bytes as JSON (limit {max_attrs_bytes})", ATTRS_SIZE
        )
    probe = "".join(fields)
    if not probe.isascii() or _COPY_SPECIAL.search(probe):
        fields = [_text(field) for field in fields]
    host, service, message, logger, request_id, trace_id, span_id, attrs_json = fields
    line = "\t".join(
        (
            timestamp_text(ts),
            host,
            service,
            level,
            LEVEL_TEXT[level],
            message,
            logger,
            request_id or NULL,
            trace_id or NULL,
            span_id or NULL,
            attrs_json,
            org_text,
        )
    )
    return Row(line + "\n", int(ts // SECONDS_PER_DAY), truncated)


def timestamp_text(ts: float) -> str:
    """Return `ts` (seconds since 1970, not negative) as UTC text for COPY, to the microsecond.

    Rounds like ``datetime.fromtimestamp`` (half to even) but caches the text of each second:
    a batch's records share a few seconds, and formatting a datetime was a tenth of the work.
    """
    second = int(ts)
    micros = round((ts - second) * 1e6)
    if micros >= 1_000_000:
        second += 1
        micros -= 1_000_000
    prefix = _SECOND_TEXT.get(second)
    if prefix is None:
        if len(_SECOND_TEXT) >= _SECOND_TEXT_MAX:
            _SECOND_TEXT.clear()
        prefix = _SECOND_TEXT[second] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    return f"{prefix}.{micros:06d}+00:00"


def _timestamp(value: Any, window: Window) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise RecordRejected(f"ts must be seconds since 1970, got {_quote(value)}", "timestamp")
    if value < window.oldest:
        raise RecordRejected(
            f"timestamp {_iso(value)} is older than the log retention of {window.retention_days} days",
            "too_old",
        )
    if value > window.newest:
        raise RecordRejected(f"timestamp {_iso(value)} is more than a day in the future", "future")
    return float(value)


def _quote(value: Any) -> str:
    """repr() of `value`, cut to QUOTE_CHARS: a reason never carries a 10 MB string."""
    if isinstance(value, dict | list | tuple | set):
        return f"<{type(value).__name__}>"
    text = repr(value)
    return text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS] + "..."


def _iso(value: float) -> str:
    try:
        return datetime.fromtimestamp(value, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return repr(value)


def _name(record: dict[str, Any], field: str) -> str | None:
    value = record.get(field)
    if value.__class__ is str and 0 < len(value) <= MAX_NAME_CHARS:
        return value
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise RecordRejected(f"{field} must be a string, got {type(value).__name__}", field)
    if len(value) > MAX_NAME_CHARS:
        raise RecordRejected(f"{field} is {len(value)} characters long (limit {MAX_NAME_CHARS})", field)
    return value


def _attrs(record: dict[str, Any]) -> dict[str, Any]:
    given = record.get("attrs")
    if given is not None and not isinstance(given, dict):
        raise RecordRejected(f"attrs must be a map, got {type(given).__name__}", "attrs")
    attrs = dict(given) if given else {}
    for key in record.keys() - KNOWN_FIELDS:
        attrs[key] = record[key]
    return attrs


def _attrs_json(attrs: dict[str, Any]) -> str:
    """Serialise attrs for jsonb, which refuses NUL, lone surrogates and NaN."""
    if not attrs:
        return "{}"
    try:
        return _attrs_text(attrs)
    except RecursionError:  # only a record read from a file can get here: the wire layer bounds nesting
        raise RecordRejected("attrs are nested too deeply to store", "attrs") from None


def _attrs_text(attrs: dict[str, Any]) -> str:
    try:
        text = "".join(_C_ENCODER(attrs, 0)) if _C_ENCODER is not None else _JSON.encode(attrs)
        if "\\u0000" not in text and (text.isascii() or _encodes(text)):
            return text
    except (ValueError, TypeError):
        pass
    return _JSON.encode(_clean(attrs))


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return _safe(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {_safe(str(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return _safe(str(value))


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _safe(text: str) -> str:
    """Replace NUL with U+FFFD and lone surrogates with visible backslash escapes."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if not text.isascii() and not _encodes(text):
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _text(text: str) -> str:
    """Escape one field for COPY's text format."""
    if not text.isascii() and not _encodes(text):
        text = _safe(text)
    if _COPY_SPECIAL.search(text):
        text = text.translate(_COPY_ESCAPES)
    return text
