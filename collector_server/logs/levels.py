"""Log levels: names, numbers (Python's), and the aliases other loggers use."""

from __future__ import annotations

import math

LEVELS: dict[str, int] = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
ERROR_NUMBER = LEVELS["ERROR"]
ALIASES: dict[str, str] = {
    "TRACE": "DEBUG",
    "VERBOSE": "DEBUG",
    "NOTICE": "INFO",
    "INFORMATION": "INFO",
    "WARN": "WARNING",
    "ERR": "ERROR",
    "FATAL": "CRITICAL",
    "CRIT": "CRITICAL",
    "ALERT": "CRITICAL",
    "EMERG": "CRITICAL",
    "EMERGENCY": "CRITICAL",
    "PANIC": "CRITICAL",
}
DEFAULT_LEVEL = "INFO"
MAX_LEVEL_CHARS = 32  # longer than any name or alias: not worth upper-casing


def normalize(value: object) -> str | None:
    """Return the canonical level name for a name, alias or Python level number; None if unknown."""
    if value is None:
        return DEFAULT_LEVEL
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, int | float):
        return _from_number(int(value))
    if not isinstance(value, str):
        return None
    if len(value) > MAX_LEVEL_CHARS:
        return None
    name = value.strip().upper()
    if name in LEVELS:
        return name
    if name in ALIASES:
        return ALIASES[name]
    if name.isdigit():
        return _from_number(int(name))
    return None


def _from_number(number: int) -> str | None:
    """Map a Python level number to the highest named level at or below it (5 -> None)."""
    best = None
    for name, threshold in LEVELS.items():
        if number >= threshold:
            best = name
    return best


def number(name: str) -> int:
    return LEVELS[name]
