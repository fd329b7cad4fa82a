"""docs/deployment.md: the values reference is generated from the chart and kept current."""

from __future__ import annotations

import importlib.util
from types import ModuleType
from typing import Any

import pytest

from .manifests import CHART, ROOT


@pytest.fixture(scope="module")
def reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location("values_reference", CHART / "tools" / "values_reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def value_keys(values: dict[str, Any], prefix: str = "") -> set[str]:
    """Dotted keys of values.yaml down to the level the schema documents."""
    keys: set[str] = set()
    for name, value in values.items():
        keys.add(prefix + name)
        if isinstance(value, dict):
            keys |= value_keys(value, f"{prefix}{name}.")
    return keys


def test_values_reference_in_the_docs_is_up_to_date(reference: ModuleType) -> None:
    assert reference.main(["--check"]) == 0, "run: python helm/tools/values_reference.py"


def test_every_documented_value_has_a_description(reference: ModuleType) -> None:
    schema, _ = reference.load_chart()
    undocumented = [key for key, node in reference.leaves(schema) if not node.get("description")]
    assert undocumented == []


def test_every_value_in_values_yaml_is_in_the_reference(reference: ModuleType) -> None:
    schema, values = reference.load_chart()
    documented = {key for key, _ in reference.leaves(schema)}
    # A key is covered when it is documented itself or lies under a documented free-form object.
    uncovered = [
        key
        for key in value_keys(values)
        if key not in documented
        and not any(key.startswith(d + ".") for d in documented)
        and not any(d.startswith(key + ".") for d in documented)
    ]
    assert uncovered == []


def test_stale_reference_is_detected(reference: ModuleType) -> None:
    doc = (ROOT / "docs" / "deployment.md").read_text()
    schema, values = reference.load_chart()
    values["server"]["replicas"] = 99
    assert reference.updated_doc(doc, reference.table(schema, values)) != doc
