"""Log context kept in a ContextVar, so threads and asyncio tasks never see each other's fields.

A new thread starts with an empty context; an asyncio task starts with a copy of its
creator's context, and what it sets afterwards stays inside the task.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_context: ContextVar[Mapping[str, Any]] = ContextVar("fleetwatch_log_context", default=_EMPTY)
# The ids of the request being served (request_id, trace_id, span_id), set by the SDK's
# middleware: clear_context() keeps them, so the request's own lines stay findable by its id.
_request_ids: ContextVar[Mapping[str, Any]] = ContextVar("fleetwatch_request_ids", default=_EMPTY)


def get_context() -> Mapping[str, Any]:
    """Return the fields of the current context (read-only)."""
    return _context.get()


def set_context(**fields: Any) -> None:
    """Add fields to every record logged from the current thread or task from now on."""
    merged = dict(_context.get())
    merged.update(fields)
    _context.set(MappingProxyType(merged))


def clear_context() -> None:
    """Remove the context fields of the current thread or task, except the ids of the request being served."""
    _context.set(_request_ids.get())


def swap_request_ids(ids: Mapping[str, Any]) -> Mapping[str, Any]:
    """Set the ids clear_context() keeps (the SDK's middleware calls this); return the previous ones."""
    previous = _request_ids.get()
    _request_ids.set(MappingProxyType(dict(ids)) if ids else _EMPTY)
    return previous


def replace_context(fields: Mapping[str, Any]) -> Mapping[str, Any]:
    """Set the context to exactly these fields and return the previous context."""
    previous = _context.get()
    _context.set(MappingProxyType(dict(fields)) if fields else _EMPTY)
    return previous


def restore_context(previous: Mapping[str, Any]) -> None:
    """Put back a context returned by ``replace_context``."""
    _context.set(previous)


@contextmanager
def bound_context(**fields: Any) -> Iterator[None]:
    """Add fields for the duration of a ``with`` block."""
    token = _context.set(MappingProxyType({**_context.get(), **fields}))
    try:
        yield
    finally:
        _context.reset(token)
