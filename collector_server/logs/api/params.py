"""Parse query parameters; every problem is a 400 naming the parameter."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from collector_server.monitoring.api.errors import BadParameter


def text(name: str, raw: str) -> str:
    """Refuse a NUL character in one value (a path segment)."""
    if "\x00" in raw:
        raise BadParameter(name, "must not contain NUL characters")
    return raw


def timestamp(name: str, raw: str | None) -> datetime | None:
    """Parse ISO 8601 (naive means UTC) or seconds since 1970."""
    if raw is None or raw.strip() == "":
        return None
    text = raw.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds) or not 0 <= seconds < 253402300800:
            raise BadParameter(name, f"{raw!r} is not a time (seconds since 1970 out of range)")
        return datetime.fromtimestamp(seconds, UTC)
    try:
        value = datetime.fromisoformat(text.replace(" ", "+") if text.count(" ") == 1 else text)
    except ValueError:
        raise BadParameter(name, f"{raw!r} is not a time (use ISO 8601 or seconds since 1970)") from None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)  # Postgres refuses UTC offsets beyond 15:59
    except OverflowError:
        raise BadParameter(name, f"{raw!r} is out of range once turned into UTC") from None


def integer(name: str, raw: str | None, default: int, minimum: int, maximum: int) -> int:
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise BadParameter(name, f"{raw!r} is not an integer") from None
    if not minimum <= value <= maximum:
        raise BadParameter(name, f"must be between {minimum} and {maximum}, got {value}")
    return value


def choice(name: str, raw: str | None, choices: tuple[str, ...], default: str) -> str:
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value not in choices:
        raise BadParameter(name, f"{raw!r} is not one of {', '.join(choices)}")
    return value


def boolean(name: str, raw: str | None, default: bool = False) -> bool:
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise BadParameter(name, f"{raw!r} is not a boolean (true or false)")


def text_list(name: str, raw: str | None, max_chars: int = 200) -> list[str]:
    """Split a comma-separated value; each item must be 1..max_chars characters."""
    if raw is None:
        return []
    items = [item.strip() for item in raw.split(",") if item.strip()]
    if not items:
        raise BadParameter(name, "must not be empty")
    for item in items:
        if len(item) > max_chars:
            raise BadParameter(name, f"values are limited to {max_chars} characters")
    return items
