"""Server and worker settings the chart exposes as values: their names, defaults and bounds agree with
collector_server/settings.py (loaded for real from the rendered ConfigMap) and the README's settings table."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from typing import Any

import helm_python
import pytest

from .conftest import Render
from .manifests import CHART, RELEASE, ROOT, find

# Value under `config` -> the setting it renders, and a value other than the default.
SETTINGS = {
    "ingest.chunk": ("INGEST_CHUNK", 500),
    "ingest.chunkSamples": ("INGEST_CHUNK_SAMPLES", 2_500_000),
    "promqlResultsCache": ("PROMQL_RESULTS_CACHE", False),
    "logSearch.budgetMs": ("LOG_SEARCH_BUDGET_MS", 0),
    "logSearch.moreBudgetMs": ("LOG_SEARCH_MORE_BUDGET_MS", 5000),
}
# Larger than any bound a setting might have.
HUGE = 10**9
INTEGER_SETTINGS = [key for key, (_, value) in SETTINGS.items() if type(value) is int]


def config_values(key: str, value: Any) -> dict[str, Any]:
    """Return chart values setting config.<key> (dotted) to value."""
    node: Any = value
    for part in reversed(key.split(".")):
        node = {part: node}
    return {"config": node}


def schema_node(key: str) -> dict[str, Any]:
    node = json.loads((CHART / "values.schema.json").read_text())["properties"]["config"]
    for part in key.split("."):
        node = node["properties"][part]
    return node


def bounds(key: str) -> list[tuple[str, int]]:
    """The schema's bounds of an integer value: [("minimum", n), ("maximum", m)] as far as it has them."""
    node = schema_node(key)
    return [(name, node[name]) for name in ("minimum", "maximum") if name in node]


def pod_env(docs: list[dict[str, Any]]) -> dict[str, str]:
    """The environment the server and workers get: the ConfigMap and the chart's Secret."""
    env = dict(find(docs, "ConfigMap")["data"])
    secret = find(docs, "Secret", RELEASE + "-fleetwatch")["data"]
    env |= {name: base64.b64decode(value).decode() for name, value in secret.items()}
    return env


def load_settings(env: dict[str, str], names: list[str]) -> subprocess.CompletedProcess[str]:
    """Import collector_server.settings in a fresh process with only env set; print the named settings."""
    code = "import json, collector_server.settings as s; print(json.dumps([getattr(s, n) for n in %r]))"
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(
        [sys.executable, "-c", code % names],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("key", SETTINGS)
def test_value_reaches_the_config_map_under_its_setting_name(render: Render, key: str) -> None:
    name, value = SETTINGS[key]
    docs = render(config_values(key, value))
    assert find(docs, "ConfigMap")["data"][name] == json.dumps(value)
    loaded = load_settings(pod_env(docs), [name])
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout) == [value]


def readme_defaults() -> dict[str, str]:
    """Setting -> default from the README's settings table, for rows that give one default per setting."""
    defaults: dict[str, str] = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        row = re.match(r"^\| (`[A-Z0-9_]+`(?:, `[A-Z0-9_]+`)*) \| ([^|]*) \|", line)
        if not row or "—" in row.group(2):
            continue
        names = re.findall(r"`([A-Z0-9_]+)`", row.group(1))
        values = re.findall(r"`([^`]*)`", row.group(2))
        if len(values) == len(names):
            defaults.update(zip(names, values, strict=True))
    return defaults


def test_chart_defaults_match_the_readme_settings_table(render: Render) -> None:
    config = find(render(), "ConfigMap")["data"]
    documented = readme_defaults()
    assert {name for name, _ in SETTINGS.values()} <= set(documented)
    differing = {name: (value, documented[name]) for name, value in config.items() if name in documented}
    assert {name: pair for name, pair in differing.items() if pair[0] != pair[1]} == {}


def test_defaults_load_in_the_server(render: Render) -> None:
    names = [name for name, _ in SETTINGS.values()]
    loaded = load_settings(pod_env(render()), names)
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout) == [2000, 100_000, True, 150, 1000]


@pytest.mark.parametrize("key", INTEGER_SETTINGS)
def test_schema_bounds_are_the_bounds_the_server_accepts(render: Render, key: str) -> None:
    name, _ = SETTINGS[key]
    assert bounds(key), f"config.{key} has no minimum in values.schema.json"
    for bound, value in bounds(key):
        # On the bound: the chart renders it and the server starts with it.
        loaded = load_settings(pod_env(render(config_values(key, value))), [name])
        assert loaded.returncode == 0, loaded.stderr
        assert json.loads(loaded.stdout) == [value]
        # One past it: the schema refuses it, naming the value, and so would the server.
        past = value - 1 if bound == "minimum" else value + 1
        with pytest.raises(helm_python.HelmValuesError, match=f"/config/{key.replace('.', '/')}"):
            render(config_values(key, past))
        refused = load_settings({**pod_env(render()), name: str(past)}, [name])
        assert refused.returncode != 0 and name in refused.stderr
    if "maximum" not in dict(bounds(key)):
        # No maximum in the schema: the server must not have one either.
        loaded = load_settings({**pod_env(render()), name: str(HUGE)}, [name])
        assert loaded.returncode == 0, loaded.stderr
