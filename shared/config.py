"""Read settings from the environment, failing loudly on bad values.

Each helper names the variable in its error so a bad setting stops start-up with
a message an operator can act on. ``envsecret`` also reads ``NAME_FILE`` so that
Kubernetes can mount secrets as files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import parse_qs, unquote, urlparse


class ConfigError(ValueError):
    """A setting has a value that cannot be used."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str, env: Mapping[str, str] | None) -> str | None:
    return (os.environ if env is None else env).get(name)


def envstr(name: str, default: str = "", env: Mapping[str, str] | None = None) -> str:
    value = _raw(name, env)
    return default if value is None else value


def envbool(name: str, default: bool = False, env: Mapping[str, str] | None = None) -> bool:
    value = _raw(name, env)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{name}={value!r} is not a boolean (use true/false, 1/0, yes/no, on/off)")


def envint(
    name: str,
    default: int,
    env: Mapping[str, str] | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    value = _raw(name, env)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not an integer") from None
    _check_range(name, number, minimum, maximum)
    return number


def envfloat(
    name: str,
    default: float,
    env: Mapping[str, str] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float:
    value = _raw(name, env)
    if value is None or value.strip() == "":
        return default
    try:
        number = float(value.strip())
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a number") from None
    _check_range(name, number, minimum, maximum)
    return number


def _check_range(name: str, number: float, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and number < minimum:
        raise ConfigError(f"{name}={number} is below the minimum of {minimum}")
    if maximum is not None and number > maximum:
        raise ConfigError(f"{name}={number} is above the maximum of {maximum}")


def envlist(name: str, default: list[str] | None = None, env: Mapping[str, str] | None = None) -> list[str]:
    value = _raw(name, env)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


def envsecret(name: str, default: str = "", env: Mapping[str, str] | None = None) -> str:
    """Return NAME, or the contents of the file named by NAME_FILE."""
    path = _raw(f"{name}_FILE", env)
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read().strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE={path!r} cannot be read: {exc.strerror}") from None
    return envstr(name, default, env)


def parse_database_url(url: str, name: str = "DATABASE_URL") -> dict[str, object]:
    """Turn postgres://user:pass@host:port/db?sslmode=require into Django DATABASES fields."""
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise ConfigError(f"{name}={url!r}: only postgres:// URLs are supported")
    database = unquote(parsed.path.lstrip("/"))
    if not database:
        raise ConfigError(f"{name}={url!r} names no database (postgres://user@host:5432/DBNAME)")
    try:
        port = parsed.port
    except ValueError:
        raise ConfigError(f"{name}={url!r} has an invalid port") from None
    options = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": database,
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": parsed.hostname or "",
        "PORT": str(port or ""),
        "OPTIONS": options,
    }


def check_redis_url(url: str, name: str = "REDIS_URL") -> str:
    parsed = urlparse(url)
    if parsed.scheme not in {"redis", "rediss", "unix"}:
        raise ConfigError(f"{name}={url!r}: expected redis://, rediss:// or unix://")
    return url


PLACEHOLDER = "change-me"


def refuse_placeholders(
    values: Mapping[str, str] | None = None, env: Mapping[str, str] | None = None
) -> None:
    """Raise ConfigError naming a variable that still holds a ``change-me`` placeholder.

    Every environment variable is looked at, and ``values`` (settings read from ``NAME_FILE``).
    """
    seen = {**(os.environ if env is None else env), **(values or {})}
    for name, value in sorted(seen.items()):
        if PLACEHOLDER in str(value).lower():
            raise ConfigError(
                f"{name} still holds the placeholder {PLACEHOLDER!r} (.env.example): set a real value"
            )


def proxy_ssl_header(value: str, name: str = "SECURE_PROXY_SSL_HEADER") -> tuple[str, str] | None:
    """Parse ``X-Forwarded-Proto`` or ``X-Forwarded-Proto: https`` into Django's (META key, value) pair."""
    if not value.strip():
        return None
    header, _, expected = value.partition(":")
    header, expected = header.strip(), expected.strip() or "https"
    if not header or not all(part.isalnum() for part in header.split("-")):
        raise ConfigError(
            f"{name}={value!r} must be a header name, optionally ': value' (X-Forwarded-Proto: https)"
        )
    return "HTTP_" + header.upper().replace("-", "_"), expected
