"""log_function_call: log duration and (redacted) arguments of sync and async functions."""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from agent.sdk import context
from shared.jsonlog import CONTEXT_ATTR, FIELDS_ATTR
from shared.redaction import Redactor, default_redactor

F = TypeVar("F", bound=Callable[..., Any])
MAX_ARG_CHARS = 200


def log_function_call(
    func: F | None = None,
    *,
    logger: logging.Logger | str | None = None,
    level: int = logging.DEBUG,
    log_args: bool = True,
    redactor: Redactor | None = None,
) -> Any:
    """Log each call's duration and arguments; log exceptions with their stack trace and re-raise.

    Usable bare (``@log_function_call``) or with options (``@log_function_call(level=INFO)``).
    Arguments are bound to parameter names so ``password=...`` is redacted by name.
    """

    def decorate(target: F) -> F:
        log = _resolve_logger(logger, target)
        call = _CallLogger(target, log, level, log_args, redactor or default_redactor())
        if inspect.iscoroutinefunction(target):

            @functools.wraps(target)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    result = await target(*args, **kwargs)
                except BaseException as exc:
                    call.failed(args, kwargs, start, exc)
                    raise
                call.finished(args, kwargs, start)
                return result

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(target)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                result = target(*args, **kwargs)
            except BaseException as exc:
                call.failed(args, kwargs, start, exc)
                raise
            call.finished(args, kwargs, start)
            return result

        return wrapper  # type: ignore[return-value]

    return decorate(func) if func is not None else decorate


def _resolve_logger(logger: logging.Logger | str | None, target: Callable[..., Any]) -> logging.Logger:
    if isinstance(logger, logging.Logger):
        return logger
    return logging.getLogger(logger or target.__module__)


class _CallLogger:
    """Build and emit the records of one decorated function."""

    def __init__(
        self, target: Callable[..., Any], log: logging.Logger, level: int, log_args: bool, redactor: Redactor
    ) -> None:
        self.name = target.__qualname__
        self.func_name = target.__name__
        code = getattr(target, "__code__", None)
        self.path = code.co_filename if code is not None else "<unknown>"
        self.line = code.co_firstlineno if code is not None else 0
        self.log = log
        self.level = level
        self.log_args = log_args
        self.redactor = redactor
        try:
            self.signature: inspect.Signature | None = inspect.signature(target)
        except (TypeError, ValueError):
            self.signature = None

    def finished(self, args: tuple[Any, ...], kwargs: dict[str, Any], start: float) -> None:
        if self.log.isEnabledFor(self.level):
            fields = self._fields(args, kwargs, start)
            self._emit(self.level, f"{self.name} finished", fields, None)

    def failed(self, args: tuple[Any, ...], kwargs: dict[str, Any], start: float, exc: BaseException) -> None:
        if self.log.isEnabledFor(logging.ERROR):
            fields = self._fields(args, kwargs, start)
            fields["error"] = f"{type(exc).__name__}: {exc}"
            self._emit(logging.ERROR, f"{self.name} raised {type(exc).__name__}", fields, exc)

    def _fields(self, args: tuple[Any, ...], kwargs: dict[str, Any], start: float) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "function_name": self.name,
            "duration_ms": round((time.perf_counter() - start) * 1000.0, 3),
        }
        if self.log_args:
            fields["arguments"] = self.redactor.redact(self._arguments(args, kwargs))
        return fields

    def _arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if self.signature is not None:
            try:
                bound = self.signature.bind_partial(*args, **kwargs)
            except TypeError:
                pass
            else:
                return {name: _short(value) for name, value in bound.arguments.items()}
        return {"args": [_short(a) for a in args], **{k: _short(v) for k, v in kwargs.items()}}

    def _emit(self, level: int, msg: str, fields: dict[str, Any], exc: BaseException | None) -> None:
        extra = {FIELDS_ATTR: fields, CONTEXT_ATTR: context.get_context()}
        exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
        # The record names the decorated function, not this module.
        record = self.log.makeRecord(
            self.log.name, level, self.path, self.line, msg, (), exc_info, func=self.func_name, extra=extra
        )
        self.log.handle(record)


def _short(value: Any) -> Any:
    """Keep plain values and containers (redacted by key later); shorten everything else."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict | list | tuple):
        return value
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= MAX_ARG_CHARS else text[:MAX_ARG_CHARS] + "..."
