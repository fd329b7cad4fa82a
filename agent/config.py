"""The agent's settings: a TOML file plus environment overrides.

Precedence, lowest first: built-in defaults, the generic variables shared with the
other components (``REDIS_URL``, ``METRICS_COLLECTION_INTERVAL``,
``FLEETWATCH_STREAM_PREFIX``), the ``[agent]`` table of the TOML file, the
``FLEETWATCH_AGENT_*`` variables, then command-line flags. Every bad value raises
``ConfigError`` naming the setting; the CLI turns it into exit code 2.
"""

from __future__ import annotations

import os
import re
import socket
import tomllib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.collectors.hostpaths import DEFAULT_PROCFS, HostPaths
from agent.collectors.options import DEFAULT_OPTIONS, CollectorOptions
from shared import config as envcfg
from shared import streams
from shared.config import ConfigError
from shared.signing import Credential, CredentialError, parse_credential
from shared.streams import DEFAULT_PREFIX
from shared.wire import LABEL_NAME_RE

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_INTERVAL = 10.0
MIN_INTERVAL = 0.05  # sub-second intervals exist for tests; production uses seconds
DEFAULT_STATE_DIR = Path("/var/lib/fleetwatch-agent")
DEFAULT_SPOOL_CAP = 100 * 1024 * 1024
DEFAULT_CONFIG_PATH = Path("/etc/fleetwatch/agent.toml")
ENV_PREFIX = "FLEETWATCH_AGENT_"
AGENT_ID_FILE = "agent_id"
CREDENTIAL_FILE = "credential"  # in the state directory, when no other credential is given
AGENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")
RESERVED_LABELS = frozenset({"host"})
KNOWN_KEYS = frozenset(
    {
        "redis_url",
        "interval",
        "agent_id",
        "host",
        "labels",
        "state_dir",
        "spool_cap_bytes",
        "stream_prefix",
        "stream_shards",
        "redis_cluster",
        "collectors",
        "log_level",
        "procfs",
        "hostfs",
        "credential",
        "credential_file",
        "top_processes",
        "top_processes_interval",
        "systemd_interval",
        "wire_version",
    }
)
# Wire format of metrics batches (docs/wire-format.md): 2, or 1 for workers older than version 2.
WIRE_VERSIONS = (1, 2)
DEFAULT_WIRE_VERSION = 2
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

__all__ = ["AgentConfig", "ConfigError", "load_config"]


@dataclass(slots=True)
class AgentConfig:
    """Validated settings of one agent process."""

    redis_url: str
    interval: float
    agent_id: str
    host: str
    labels: dict[str, str]
    state_dir: Path
    spool_cap_bytes: int
    stream_prefix: str
    collectors: list[str]
    # STREAM_SHARDS of the deployment: the agent XADDs to the shard of its agent id (shared.streams).
    stream_shards: int = 1
    # redis_url names one node of a Redis Cluster (the streams' STREAM_REDIS_URL).
    redis_cluster: bool = False
    log_level: str = "INFO"
    procfs: str = DEFAULT_PROCFS  # the host's /proc (``/host/proc`` in a container)
    hostfs: str = ""  # where the host's / is mounted, for disk usage ("" = this is the host's /)
    # The enrollment credential that signs every batch (None: batches go unsigned).
    credential: Credential | None = None
    # Wire format version of metrics batches (1 or 2).
    wire_version: int = DEFAULT_WIRE_VERSION
    # The whole TOML document, so that other components ([logs], ...) read their own table.
    document: dict[str, Any] = field(default_factory=dict)
    # Top-N size and how often the costlier collectors (process walk, systemd) run.
    collector_options: CollectorOptions = DEFAULT_OPTIONS

    @property
    def host_paths(self) -> HostPaths:
        return HostPaths(self.procfs, self.hostfs)


def load_config(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    available_collectors: list[str] | None = None,
) -> AgentConfig:
    """Return the agent's settings, raising ConfigError naming the first bad one."""
    env = os.environ if env is None else env
    document = _read_document(path, env)
    table = document.get("agent", {})
    if not isinstance(table, dict):
        raise ConfigError("[agent] in the config file must be a table")
    for key in table:
        if key not in KNOWN_KEYS:
            raise ConfigError(f"unknown setting agent.{key} (known: {', '.join(sorted(KNOWN_KEYS))})")
    raw = _layered_values(table, env, overrides or {})
    return _validate(raw, document, available_collectors)


def _read_document(path: str | os.PathLike[str] | None, env: Mapping[str, str]) -> dict[str, Any]:
    explicit = path is not None or bool(env.get("FLEETWATCH_AGENT_CONFIG"))
    chosen = (
        Path(path) if path is not None else Path(env.get("FLEETWATCH_AGENT_CONFIG") or DEFAULT_CONFIG_PATH)
    )
    if not explicit and not chosen.exists():
        return {}
    try:
        with chosen.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(
            f"config file {str(chosen)!r} (--config / FLEETWATCH_AGENT_CONFIG): {exc.strerror}"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(chosen)!r} is not valid TOML: {exc}") from None


def _layered_values(
    table: dict[str, Any], env: Mapping[str, str], overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """Merge defaults, generic env, file and FLEETWATCH_AGENT_* env; each value keeps its source name."""
    values: dict[str, tuple[Any, str]] = {}
    generic = {
        "redis_url": "REDIS_URL",
        "interval": "METRICS_COLLECTION_INTERVAL",
        "stream_prefix": "FLEETWATCH_STREAM_PREFIX",
        "stream_shards": "STREAM_SHARDS",
    }
    for key, name in generic.items():
        if env.get(name):
            values[key] = (env[name], name)
    for key, value in table.items():
        values[key] = (value, f"agent.{key}")
    for key in KNOWN_KEYS:
        name = ENV_PREFIX + key.upper()
        if env.get(name, "").strip():  # an empty variable (common in compose files) counts as unset
            values[key] = (env[name], name)
    for key, value in overrides.items():
        if value is not None:
            values[key] = (value, f"--{key.replace('_', '-')}")
    return values


def _validate(
    raw: dict[str, Any], document: dict[str, Any], available_collectors: list[str] | None
) -> AgentConfig:
    redis_url = _string(raw, "redis_url", DEFAULT_REDIS_URL)
    envcfg.check_redis_url(redis_url, name=_source(raw, "redis_url", "REDIS_URL"))
    state_dir = _state_dir(raw)
    return AgentConfig(
        redis_url=redis_url,
        interval=_number(raw, "interval", DEFAULT_INTERVAL, minimum=MIN_INTERVAL),
        agent_id=_agent_id(raw, state_dir),
        host=_host(raw),
        labels=_labels(raw),
        state_dir=state_dir,
        spool_cap_bytes=int(_number(raw, "spool_cap_bytes", DEFAULT_SPOOL_CAP, minimum=1, integer=True)),
        stream_prefix=_prefix(raw),
        stream_shards=_shards(raw),
        redis_cluster=_flag(raw, "redis_cluster"),
        collectors=_collectors(raw, available_collectors),
        log_level=_log_level(raw),
        procfs=_directory(raw, "procfs", DEFAULT_PROCFS),
        hostfs=_directory(raw, "hostfs", ""),
        credential=_credential(raw, state_dir),
        wire_version=_wire_version(raw),
        document=document,
        collector_options=_collector_options(raw),
    )


def _collector_options(raw: dict[str, Any]) -> CollectorOptions:
    return CollectorOptions(
        top_processes=int(
            _number(raw, "top_processes", DEFAULT_OPTIONS.top_processes, minimum=1, integer=True, maximum=100)
        ),
        top_processes_interval=_number(
            raw, "top_processes_interval", DEFAULT_OPTIONS.top_processes_interval, minimum=MIN_INTERVAL
        ),
        systemd_interval=_number(
            raw, "systemd_interval", DEFAULT_OPTIONS.systemd_interval, minimum=MIN_INTERVAL
        ),
    )


def _wire_version(raw: dict[str, Any]) -> int:
    version = int(_number(raw, "wire_version", DEFAULT_WIRE_VERSION, minimum=1, integer=True))
    if version not in WIRE_VERSIONS:
        source = raw["wire_version"][1]
        raise ConfigError(
            f"{source}={raw['wire_version'][0]!r} must be one of {', '.join(map(str, WIRE_VERSIONS))}"
        )
    return version


def _source(raw: dict[str, Any], key: str, fallback: str) -> str:
    return raw[key][1] if key in raw else fallback


def _string(raw: dict[str, Any], key: str, default: str) -> str:
    if key not in raw:
        return default
    value, source = raw[key]
    if not isinstance(value, str):
        raise ConfigError(f"{source}={value!r} must be a string")
    return value.strip()


def _number(
    raw: dict[str, Any],
    key: str,
    default: float,
    minimum: float,
    integer: bool = False,
    maximum: float = float("inf"),
) -> float:
    if key not in raw:
        return default
    value, source = raw[key]
    try:
        if isinstance(value, bool):
            raise ValueError
        number = int(value) if integer and not isinstance(value, float) else float(value)
        if integer and number != int(number):
            raise ValueError
    except (TypeError, ValueError):
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{source}={value!r} is not {kind}") from None
    if number != number or number < minimum:  # NaN or too small
        raise ConfigError(f"{source}={value!r} must be at least {minimum}")
    if number > maximum:  # inf included
        raise ConfigError(f"{source}={value!r} must be at most {maximum}")
    return number


def _state_dir(raw: dict[str, Any]) -> Path:
    if "state_dir" in raw:
        value, source = raw["state_dir"]
        path = Path(str(value)).expanduser()
        if not _writable_dir(path):
            raise ConfigError(f"{source}={value!r}: directory cannot be created or written")
        return path
    if _writable_dir(DEFAULT_STATE_DIR):
        return DEFAULT_STATE_DIR
    state_home = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    fallback = state_home / "fleetwatch-agent"
    if not _writable_dir(fallback):
        raise ConfigError(
            f"FLEETWATCH_AGENT_STATE_DIR: neither {DEFAULT_STATE_DIR} nor {fallback} is writable; set it"
        )
    return fallback


def _directory(raw: dict[str, Any], key: str, default: str) -> str:
    """Return the setting, which must name an existing directory by its absolute path."""
    if key not in raw:
        return default
    value, source = _string(raw, key, default), raw[key][1]
    if not value:
        return default
    if not os.path.isabs(value):
        raise ConfigError(f"{source}={value!r} must be an absolute path")
    if not os.path.isdir(value):
        raise ConfigError(f"{source}={value!r} is not an existing directory")
    return value.rstrip("/") or "/"


def _writable_dir(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK | os.X_OK)


def _agent_id(raw: dict[str, Any], state_dir: Path) -> str:
    if "agent_id" in raw:
        value, source = raw["agent_id"]
        if not isinstance(value, str) or not AGENT_ID_RE.match(value):
            raise ConfigError(f"{source}={value!r} must be 1-128 characters of letters, digits and ._:@-")
        return value
    return persisted_agent_id(state_dir)


def persisted_agent_id(state_dir: Path) -> str:
    """Return the agent id stored in the state dir, creating a random one the first time."""
    path = state_dir / AGENT_ID_FILE
    try:
        stored = path.read_text(encoding="utf-8").strip()
        if AGENT_ID_RE.match(stored):
            return stored
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ConfigError(f"FLEETWATCH_AGENT_STATE_DIR: cannot read {path}: {exc.strerror}") from None
    new_id = str(uuid.uuid4())
    tmp = path.with_suffix(".tmp")
    tmp.write_text(new_id + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return new_id


def _credential(raw: dict[str, Any], state_dir: Path) -> Credential | None:
    """Return the credential: given directly, in a named file (a mounted Secret), or in the state dir."""
    if "credential" in raw:
        text, source = _string(raw, "credential", ""), raw["credential"][1]
    elif "credential_file" in raw:
        path, source = Path(_string(raw, "credential_file", "")), raw["credential_file"][1]
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{source}={str(path)!r}: {exc.strerror}") from None
    else:
        path, source = state_dir / CREDENTIAL_FILE, f"{state_dir / CREDENTIAL_FILE}"
        if not path.exists():
            return None
        text = path.read_text(encoding="utf-8")
    if not text.strip():
        return None
    try:
        return parse_credential(text)
    except CredentialError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def save_credential(state_dir: Path, credential: Credential) -> Path:
    """Write the credential to the state directory, readable by its owner only."""
    path = state_dir / CREDENTIAL_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(f"{credential}\n")
    os.replace(tmp, path)
    return path


def _host(raw: dict[str, Any]) -> str:
    host = _string(raw, "host", "") or socket.gethostname()
    if not host:
        raise ConfigError(f"{_source(raw, 'host', 'FLEETWATCH_AGENT_HOST')} must not be empty")
    return host


def _labels(raw: dict[str, Any]) -> dict[str, str]:
    if "labels" not in raw:
        return {}
    value, source = raw["labels"]
    if isinstance(value, str):
        value = _parse_label_string(value, source)
    if not isinstance(value, dict):
        raise ConfigError(f"{source} must be a table of name = value")
    labels: dict[str, str] = {}
    for name, label_value in value.items():
        if not isinstance(name, str) or not LABEL_NAME_RE.match(name) or name in RESERVED_LABELS:
            raise ConfigError(f"{source}: {name!r} is not a usable label name")
        labels[name] = str(label_value)
    return labels


def _parse_label_string(text: str, source: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"{source}: {item!r} is not name=value")
        labels[name.strip()] = value.strip()
    return labels


def _prefix(raw: dict[str, Any]) -> str:
    prefix = _string(raw, "stream_prefix", DEFAULT_PREFIX)
    if not prefix or any(ch.isspace() for ch in prefix):
        raise ConfigError(
            f"{_source(raw, 'stream_prefix', 'FLEETWATCH_STREAM_PREFIX')}={prefix!r} is not usable"
        )
    return prefix


def _shards(raw: dict[str, Any]) -> int:
    if "stream_shards" not in raw:
        return 1
    value, source = raw["stream_shards"]
    try:
        return streams.parse_shards(value, name=source)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _flag(raw: dict[str, Any], key: str) -> bool:
    if key not in raw:
        return False
    value, source = raw[key]
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"{source}={value!r} is not a boolean (true/false)")


def _collectors(raw: dict[str, Any], available: list[str] | None) -> list[str]:
    known = list(available or [])
    if "collectors" not in raw:
        return known
    value, source = raw["collectors"]
    names = [item.strip() for item in value.split(",") if item.strip()] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ConfigError(f"{source} must be a list of collector names")
    for name in names:
        if available is not None and name not in known:
            raise ConfigError(f"{source}: unknown collector {name!r} (known: {', '.join(known)})")
    return list(dict.fromkeys(names))


def _log_level(raw: dict[str, Any]) -> str:
    level = _string(raw, "log_level", "INFO").upper()
    if level not in LOG_LEVELS:
        raise ConfigError(
            f"{_source(raw, 'log_level', 'FLEETWATCH_AGENT_LOG_LEVEL')}={level!r} is not one of {LOG_LEVELS}"
        )
    return level
