"""A JSON log formatter for the standard logging module, and the logs-batch record shape.

``JSONFormatter`` emits the fields of the seed documents' example entry (timestamp in UTC
ISO 8601 with milliseconds, level, logger, message, module, function, line, thread,
process) plus every extra field passed to the log call, redacted.

``wire_record`` turns such an entry (from the SDK or from a JSON-lines file) into the record
shape of a logs batch: ``{"ts", "level", "message", "logger", "service", "module",
"function", "line", "thread", "process", "request_id", "trace_id", "span_id", "attrs"}``.
"""

from __future__ import annotations

import json
import logging
import math
import time
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from shared.redaction import Redactor, default_redactor

# Structured fields a log call attaches under one attribute, so their names never clash with
# LogRecord's own attributes ("message", "module", "args", ...).
FIELDS_ATTR = "fw_fields"
# Context (request id, user id, ...) captured when the record was made.
CONTEXT_ATTR = "fw_context"
# Fields the SDK itself computed from values it controls (method, route, status, duration,
# sizes, an already redacted query): they skip redaction, which is most of a request line's cost.
TRUSTED_ATTR = "fw_trusted"

# Attributes every LogRecord has; anything else on a record is an extra field.
_RESERVED = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "taskName", FIELDS_ATTR, CONTEXT_ATTR, TRUSTED_ATTR}
)
_TOP_LEVEL = ("logger", "service", "module", "function", "line", "thread", "process")
_TOP_LEVEL_IDS = ("request_id", "trace_id", "span_id")
_LEVEL_ALIASES = {
    "WARN": "WARNING",
    "FATAL": "CRITICAL",
    "CRIT": "CRITICAL",
    "ERR": "ERROR",
    "EMERG": "CRITICAL",
    "ALERT": "CRITICAL",
    "NOTICE": "INFO",
    "INFORMATION": "INFO",
    "TRACE": "DEBUG",
    "DBG": "DEBUG",
}
_LEVELS = frozenset({"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"})
_BASE_FIELDS = frozenset(
    {"timestamp", "level", "logger", "message", "module", "function", "line", "thread", "process"}
)


_second_cache: tuple[int, str] = (-1, "")


def iso_utc(created: float) -> str:
    """Return UTC ISO 8601 with milliseconds and a Z suffix."""
    global _second_cache
    second, micros = divmod(round(created * 1_000_000), 1_000_000)
    cached = _second_cache  # one tuple, so threads never pair one second with another's text
    if cached[0] != second:
        cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        _second_cache = cached
    return f"{cached[1]}.{micros // 1000:03d}Z"


def record_fields(
    record: logging.LogRecord,
    context: Mapping[str, Any] | None = None,
    redactor: Redactor | None = None,
) -> dict[str, Any]:
    """Return the structured fields of a log record, context and extras included, redacted.

    Precedence, lowest first: context, ``extra=`` attributes, structured per-call fields, the
    SDK's trusted fields. The fields the record itself provides (timestamp, logger, line, ...)
    and the SDK's trusted ones are not user data and skip redaction; the message, exception
    and every other field go through it.
    """
    redactor = redactor or default_redactor()
    extras: dict[str, Any] = {}
    captured = getattr(record, CONTEXT_ATTR, None)
    scoped = captured if captured is not None else context
    if scoped:
        extras.update(scoped)
    extra_keys = record.__dict__.keys() - _RESERVED  # a set operation in C; usually empty
    if extra_keys:
        for key, value in record.__dict__.items():
            if key in extra_keys and key[0] != "_":
                extras[key] = value
    fields = getattr(record, FIELDS_ATTR, None)
    if fields:
        for key, value in fields.items():
            # A per-call field never replaces the entry's own fields (message, level, ...).
            extras[f"extra_{key}" if key in _BASE_FIELDS else key] = value
    if record.exc_info:
        extras["exception"] = "".join(traceback.format_exception(*record.exc_info))
    elif record.exc_text:
        extras["exception"] = record.exc_text
    if record.stack_info:
        extras["stack"] = record.stack_info
    entry: dict[str, Any] = {
        "timestamp": iso_utc(record.created),
        "level": record.levelname,
        "logger": record.name,
        "message": redactor.redact_message(record.msg, record.args)
        if record.args
        else redactor.redact_text(str(record.msg)),
        "module": record.module,
        "function": record.funcName,
        "line": record.lineno,
        "thread": record.thread,
        "process": record.process,
    }
    trusted = getattr(record, TRUSTED_ATTR, None)
    if trusted:
        for key, value in trusted.items():
            entry.setdefault(key, value)
    if extras:
        # Request, trace and span ids are the SDK's own (or validated) identifiers: redacting a
        # digit run inside one would break log correlation and request-id search.
        ids = {key: extras.pop(key) for key in _TOP_LEVEL_IDS if isinstance(extras.get(key), str)}
        for key, value in redactor.redact(extras).items():
            entry.setdefault(key, value)
        for key, value in ids.items():
            entry.setdefault(key, value)
    return entry


class JSONFormatter(logging.Formatter):
    """Format each record as one line of JSON (redacted; extra fields included)."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or default_redactor()

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        return record_fields(record, redactor=self.redactor)

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(self.fields(record), default=str, ensure_ascii=False)


def normalise_level(level: Any) -> str:
    """Return one of DEBUG/INFO/WARNING/ERROR/CRITICAL for a level name or number."""
    if isinstance(level, int) and not isinstance(level, bool):
        name = logging.getLevelName(level)
        return name if name in _LEVELS else ("CRITICAL" if level > 50 else "INFO")
    text = str(level or "").strip().upper()
    text = _LEVEL_ALIASES.get(text, text)
    return text if text in _LEVELS else "INFO"


def parse_timestamp(value: Any) -> float | None:
    """Return epoch seconds from an ISO 8601 string or a number, or None when unparseable."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        if not math.isfinite(number):
            return None
        return number / 1000.0 if number > 1e11 else number  # milliseconds
    if isinstance(value, str) and value:
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            stamp = datetime.fromisoformat(text)
        except ValueError:
            return None
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        return stamp.timestamp()
    return None


_WIRE_SKIP = frozenset(
    {"ts", "timestamp", "time", "@timestamp", "asctime", "level", "levelname", "message", "msg"}
)
_WIRE_RAW = frozenset({"line", "thread", "process"})
_WIRE_TEXT = frozenset(_TOP_LEVEL + _TOP_LEVEL_IDS) - _WIRE_RAW


def wire_record(
    entry: Mapping[str, Any],
    service: str | None = None,
    now: float | None = None,
    ts: float | None = None,
) -> dict[str, Any]:
    """Return the logs-batch record for one structured entry; unknown fields go to ``attrs``.

    An entry already in the record shape (the SDK's fallback file) has an ``attrs`` map: its
    items become the attributes (not ``attrs.attrs``); other unknown keys are added after them
    and never replace one of the map's (the map is the record's own attributes).

    ``ts``, when the caller knows it (a LogRecord's ``created``), is used as is; otherwise the
    entry's own timestamp field is parsed, and ``now`` is the fallback.
    """
    if ts is None:
        for key in ("ts", "timestamp", "time", "@timestamp", "asctime"):
            if key in entry:
                ts = parse_timestamp(entry[key])
                if ts is not None:
                    break
    level = entry.get("level", entry.get("levelname", "INFO"))
    message = entry.get("message", entry.get("msg", ""))
    record: dict[str, Any] = {
        "ts": ts if ts is not None else (now if now is not None else datetime.now(tz=UTC).timestamp()),
        "level": level if type(level) is str and level in _LEVELS else normalise_level(level),
        "message": message if type(message) is str else _as_text(message),
    }
    own = entry.get("attrs")
    attrs: dict[str, Any] = dict(own) if type(own) is dict else {}
    for key, value in entry.items():
        if key in _WIRE_SKIP:
            continue
        if key in _WIRE_TEXT:
            record[key] = value if type(value) is str else _as_text(value)
        elif key in _WIRE_RAW:
            record[key] = value
        elif key == "attrs" and type(own) is dict:
            continue
        else:
            attrs.setdefault(key, value)
    if service and not record.get("service"):
        record["service"] = service
    if attrs:
        record["attrs"] = attrs
    return record


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
