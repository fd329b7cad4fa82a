"""The ``[[scrape]]`` tables of the agent's config file.

```toml
[[scrape]]
url = "http://127.0.0.1:8000/api/metrics"   # required, http or https
name = "api"          # the job label; default: the URL's host:port
interval = 15         # seconds between scrapes (default 15)
timeout = 10          # seconds; at most the interval (default: 10 or the interval if smaller)
labels = { service = "api" }   # added to every sample
preset = "vllm"       # optional: "vllm", "tgi" or "ollama" adds the LLM contract series (agent/scrape/presets.py)
model = "llama-3-8b"  # with a preset: the model label where the server has none (default: name)
keep_original = true  # with a preset: keep the server's own series too (default true)
```
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from agent.scrape.presets import PRESETS
from shared.config import ConfigError
from shared.wire import LABEL_NAME_RE

DEFAULT_INTERVAL = 15.0
DEFAULT_TIMEOUT = 10.0
MIN_INTERVAL = 0.1
KNOWN_KEYS = frozenset({"url", "name", "interval", "timeout", "labels", "preset", "model", "keep_original"})
RESERVED_LABELS = frozenset({"host", "job", "instance"})


@dataclass(frozen=True)
class ScrapeTarget:
    url: str
    name: str
    instance: str
    interval: float
    timeout: float
    labels: dict[str, str] = field(default_factory=dict)
    preset: str | None = None
    model: str = ""
    keep_original: bool = True


def _seconds(table: dict[str, Any], key: str, default: float, where: str) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where}.{key} must be a number of seconds, not {value!r}")
    if value < MIN_INTERVAL:
        raise ConfigError(f"{where}.{key} must be at least {MIN_INTERVAL} seconds, not {value}")
    return float(value)


def _target(table: Any, number: int) -> ScrapeTarget:
    where = f"[[scrape]] #{number + 1}"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = sorted(set(table) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(KNOWN_KEYS))})"
        )
    url = table.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{where}.url must be an http:// or https:// URL, not {url!r}")
    name = table.get("name", parts.netloc)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}.name must be a non-empty string")
    interval = _seconds(table, "interval", DEFAULT_INTERVAL, where)
    timeout = _seconds(table, "timeout", min(DEFAULT_TIMEOUT, interval), where)
    if timeout > interval:
        raise ConfigError(f"{where}.timeout ({timeout}) must not exceed its interval ({interval})")
    labels = table.get("labels", {})
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise ConfigError(f"{where}.labels must be a table of strings")
    for label in labels:
        if not LABEL_NAME_RE.match(label) or label in RESERVED_LABELS:
            raise ConfigError(f"{where}.labels: {label!r} is not a usable label name")
    preset = table.get("preset")
    if preset is not None and preset not in PRESETS:
        raise ConfigError(f"{where}.preset must be one of {', '.join(sorted(PRESETS))}, not {preset!r}")
    model = table.get("model", name)
    if not isinstance(model, str) or not model:
        raise ConfigError(f"{where}.model must be a non-empty string")
    keep_original = table.get("keep_original", True)
    if not isinstance(keep_original, bool):
        raise ConfigError(f"{where}.keep_original must be true or false, not {keep_original!r}")
    if preset is None and ("model" in table or "keep_original" in table):
        raise ConfigError(f"{where}: model and keep_original only apply with a preset")
    return ScrapeTarget(
        url, name, parts.netloc, interval, timeout, dict(labels), preset, model, keep_original
    )


def scrape_targets(document: dict[str, Any]) -> list[ScrapeTarget]:
    """Return the validated targets of the config document (none when there is no [[scrape]])."""
    tables = document.get("scrape", [])
    if not isinstance(tables, list):
        raise ConfigError("scrape in the config file must be an array of tables ([[scrape]])")
    targets = [_target(table, number) for number, table in enumerate(tables)]
    names = [t.name for t in targets]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"[[scrape]] names must be unique; repeated: {', '.join(duplicates)}")
    return targets
