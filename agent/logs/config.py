"""Settings of the agent's log shipping (local endpoint and file tailing), validated on load.

``LogShipConfig.from_dict`` takes the ``logs`` section of the agent config; every bad value
raises ConfigError naming the key, e.g. ``logs.files[0].pattern``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from agent.sdk.protocol import default_socket_path
from shared.config import ConfigError

DEFAULT_MAX_RECORD_BYTES = 64 * 1024
DEFAULT_TEXT_PATTERN = (
    r"^(?P<timestamp>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)?\s*"
    r"[\[(]?(?P<level>DEBUG|INFO|WARN|WARNING|ERROR|CRITICAL|FATAL)[\])]?\s*:?\s+(?P<message>.*)$"
)
FORMATS = frozenset({"json", "text"})
MAX_SOCKET_PATH_BYTES = 107


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """Who is shipping: the ``agent`` map of every batch."""

    agent_id: str
    host: str
    version: str = ""


@dataclass(slots=True)
class FileSource:
    """One group of files to tail: glob patterns, their format and service name."""

    paths: list[str]
    format: str = "json"
    service: str = ""
    pattern: re.Pattern[str] | None = None
    multiline_start: re.Pattern[str] | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str) -> FileSource:
        if not isinstance(raw, dict):
            raise ConfigError(f"{where} must be a map with 'paths'")
        unknown = set(raw) - {"paths", "format", "service", "pattern", "multiline_start"}
        if unknown:
            raise ConfigError(f"{where} has unknown key(s) {sorted(unknown)}")
        paths = raw.get("paths")
        if isinstance(paths, str):
            paths = [paths]
        if not paths or not all(isinstance(p, str) and p for p in paths):
            raise ConfigError(f"{where}.paths must be a non-empty list of glob patterns")
        fmt = raw.get("format", "json")
        if fmt not in FORMATS:
            raise ConfigError(f"{where}.format={fmt!r} must be one of {sorted(FORMATS)}")
        pattern = _regex(raw.get("pattern"), f"{where}.pattern")
        if fmt == "text":
            pattern = pattern or re.compile(DEFAULT_TEXT_PATTERN)
            if "message" not in pattern.groupindex:
                raise ConfigError(f"{where}.pattern needs a named group (?P<message>...)")
        start = _regex(raw.get("multiline_start"), f"{where}.multiline_start")
        return cls(list(paths), fmt, str(raw.get("service", "")), pattern, start)


@dataclass(slots=True)
class LogShipConfig:
    """The ``logs`` section of the agent config."""

    state_dir: str
    socket_enabled: bool = True
    socket_path: str = field(default_factory=default_socket_path)
    socket_mode: int = 0o660
    files: list[FileSource] = field(default_factory=list)
    poll_interval: float = 1.0
    flush_interval: float = 2.0
    multiline_timeout: float = 2.0
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    max_batch_records: int = 1000
    max_batch_bytes: int = 1024 * 1024
    max_buffer_records: int = 20000

    @classmethod
    def from_dict(cls, raw: dict[str, Any], state_dir: str) -> LogShipConfig:
        if not isinstance(raw, dict):
            raise ConfigError("logs must be a map")
        known = set(cls.__dataclass_fields__) - {"state_dir"}
        unknown = set(raw) - known
        if unknown:
            raise ConfigError(f"logs has unknown key(s) {sorted(unknown)}")
        config = cls(state_dir=raw.get("state_dir", state_dir))
        for key in known - {"files"}:
            if key in raw:
                setattr(config, key, _typed(key, raw[key], type(getattr(config, key))))
        config.files = [
            FileSource.from_dict(item, f"logs.files[{i}]") for i, item in enumerate(raw.get("files", []))
        ]
        config.validate()
        return config

    def validate(self) -> None:
        if self.socket_enabled and len(self.socket_path.encode()) > MAX_SOCKET_PATH_BYTES:
            raise ConfigError(
                f"logs.socket_path={self.socket_path!r} is longer than {MAX_SOCKET_PATH_BYTES} bytes, "
                "the limit for a Unix socket path"
            )
        if not 0 <= self.socket_mode <= 0o777:
            raise ConfigError(f"logs.socket_mode={self.socket_mode!r} must be a permission mode like 0o660")
        for key in ("poll_interval", "flush_interval", "multiline_timeout"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"logs.{key}={getattr(self, key)} must be > 0 seconds")
        if not 256 <= self.max_record_bytes <= 16 * 1024 * 1024:
            raise ConfigError(f"logs.max_record_bytes={self.max_record_bytes} must be between 256 and 16 MiB")
        for key in ("max_batch_records", "max_batch_bytes", "max_buffer_records"):
            if getattr(self, key) < 1:
                raise ConfigError(f"logs.{key}={getattr(self, key)} must be >= 1")


def _regex(value: Any, where: str) -> re.Pattern[str] | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a regular expression string")
    try:
        return re.compile(value)
    except re.error as exc:
        raise ConfigError(f"{where}={value!r} is not a valid regular expression: {exc}") from None


def _typed(key: str, value: Any, kind: type) -> Any:
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"logs.{key}={value!r} must be true or false")
        return value
    if kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"logs.{key}={value!r} must be a number")
        if kind is int and value != int(value):
            raise ConfigError(f"logs.{key}={value!r} must be a whole number")
        return kind(value)
    if not isinstance(value, str):
        raise ConfigError(f"logs.{key}={value!r} must be a string")
    return value
