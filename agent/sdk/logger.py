"""StructuredLogger: a logger whose calls take fields as keyword arguments."""

from __future__ import annotations

import logging
from typing import Any

from agent.sdk import context
from shared.jsonlog import CONTEXT_ATTR, FIELDS_ATTR


class StructuredLogger:
    """Log with keyword fields on top of the context of the current thread or asyncio task.

    ``set_context`` and ``clear_context`` act on the ContextVar-based context, which every
    StructuredLogger and the request middleware share within one thread or task.
    """

    def __init__(self, name: str, **default_fields: Any) -> None:
        self.logger = logging.getLogger(name)
        self.default_fields = default_fields

    def set_context(self, **fields: Any) -> None:
        context.set_context(**fields)

    def clear_context(self) -> None:
        context.clear_context()

    def bind(self, **fields: Any) -> StructuredLogger:
        """Return a logger that adds these fields to each of its records."""
        bound = StructuredLogger(self.logger.name, **{**self.default_fields, **fields})
        bound.logger = self.logger
        return bound

    def log(self, level: int, msg: str, /, *args: Any, **fields: Any) -> None:
        self._log(level, msg, args, fields)

    def _log(self, level: int, msg: str, args: tuple[Any, ...], fields: dict[str, Any]) -> None:
        if not self.logger.isEnabledFor(level):
            return
        exc_info = fields.pop("exc_info", None)
        stack_info = bool(fields.pop("stack_info", False))
        merged = {**self.default_fields, **fields} if self.default_fields else fields
        extra = {FIELDS_ATTR: merged, CONTEXT_ATTR: context.get_context()}
        # stacklevel 3: the record names the caller of info()/log(), not this module.
        self.logger.log(
            level, msg, *args, exc_info=exc_info, stack_info=stack_info, extra=extra, stacklevel=3
        )

    def debug(self, msg: str, /, *args: Any, **fields: Any) -> None:
        self._log(logging.DEBUG, msg, args, fields)

    def info(self, msg: str, /, *args: Any, **fields: Any) -> None:
        self._log(logging.INFO, msg, args, fields)

    def warning(self, msg: str, /, *args: Any, **fields: Any) -> None:
        self._log(logging.WARNING, msg, args, fields)

    def error(self, msg: str, /, *args: Any, **fields: Any) -> None:
        self._log(logging.ERROR, msg, args, fields)

    def critical(self, msg: str, /, *args: Any, **fields: Any) -> None:
        self._log(logging.CRITICAL, msg, args, fields)

    def exception(self, msg: str, /, *args: Any, **fields: Any) -> None:
        fields.setdefault("exc_info", True)
        self._log(logging.ERROR, msg, args, fields)
