"""Request ids and W3C trace context (traceparent) for the request middleware."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


@dataclass(slots=True)
class TraceIds:
    request_id: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    flags: str

    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    def as_context(self) -> dict[str, str]:
        return {"request_id": self.request_id, "trace_id": self.trace_id, "span_id": self.span_id}


def new_trace_id() -> str:
    # Trace ids need to be unique, not secret; getrandbits avoids a system call per request.
    return f"{random.getrandbits(128) or 1:032x}"


def new_span_id() -> str:
    return f"{random.getrandbits(64) or 1:016x}"


def parse_traceparent(value: str | None) -> tuple[str, str, str] | None:
    """Return (trace id, parent span id, flags) of a valid traceparent header, else None."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if match is None or match.group(1) == "ff":
        return None
    _, trace_id, span_id, flags = match.groups()
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return trace_id, span_id, flags


def trace_ids(request_id: str | None, traceparent: str | None) -> TraceIds:
    """Continue the caller's trace (or start one) with a new span; keep a valid X-Request-ID.

    Without a usable X-Request-ID the request id is the trace id, so logs of one trace share it.
    """
    parsed = parse_traceparent(traceparent)
    if parsed is None:
        trace_id, parent, flags = new_trace_id(), None, "01"
    else:
        trace_id, parent, flags = parsed
    rid = request_id.strip() if request_id else ""
    if not rid or not _REQUEST_ID.match(rid):
        rid = trace_id
    return TraceIds(rid, trace_id, new_span_id(), parent, flags)
