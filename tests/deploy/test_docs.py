"""docs/deployment.md and README.md: the values reference is generated from the chart and kept current."""

from __future__ import annotations

import importlib.util
import re
from types import ModuleType
from typing import Any

import pytest
import yaml

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


DOCUMENTS = ("docs/deployment.md", "README.md")


@pytest.mark.parametrize("document", DOCUMENTS)
def test_stale_reference_is_detected(reference: ModuleType, document: str) -> None:
    doc = (ROOT / document).read_text()
    schema, values = reference.load_chart()
    values["server"]["replicas"] = 99
    assert reference.updated_doc(doc, reference.table(schema, values)) != doc


@pytest.mark.parametrize("document", DOCUMENTS)
def test_each_document_holds_the_whole_generated_table(reference: ModuleType, document: str) -> None:
    doc = (ROOT / document).read_text()
    assert ROOT / document in reference.DOCS
    generated = reference.table(*reference.load_chart())
    assert f"{reference.START}\n{generated}\n{reference.END}" in doc
    for key in ("server.livenessPath", "agent.state.hostPath", "existingSecret", "worker.queues"):
        assert f"| `{key}` |" in doc


def test_check_names_a_stale_readme(reference: ModuleType, tmp_path, monkeypatch, capsys) -> None:
    stale = tmp_path / "README.md"
    stale.write_text((ROOT / "README.md").read_text().replace("| `server.replicas` |", "| `server.pods` |"))
    fresh = tmp_path / "deployment.md"
    fresh.write_text((ROOT / "docs" / "deployment.md").read_text())
    monkeypatch.setattr(reference, "DOCS", (fresh, stale))
    assert reference.main(["--check"]) == 1
    assert str(stale) in capsys.readouterr().err
    assert reference.main([]) == 0
    assert stale.read_text() == (ROOT / "README.md").read_text()
    assert reference.main(["--check"]) == 0


def readme_deployment_section() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Deployment\n", 1)[1]
    return section.split("\n## ", 1)[0]


def test_readme_names_every_host_port_variable_compose_publishes() -> None:
    """The README's port-clash advice must name the variables docker-compose.yml really uses."""
    raw = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    published = {
        name: re.findall(r"\$\{(\w+)", " ".join(map(str, service.get("ports", []))))
        for name, service in raw["services"].items()
        if service.get("ports")
    }
    # Postgres stays on the compose network: the README says a host Postgres never clashes.
    assert set(published) == {"server", "redis"}
    section = readme_deployment_section()
    env_example = (ROOT / ".env.example").read_text()
    for variables in published.values():
        assert variables, "a published port should be configurable"
        for variable in variables:
            assert f"`{variable}" in section
            assert f"\n{variable}=" in env_example
    for command in ("docker compose up -d", "--scale worker=", "existingSecret", "helm install"):
        assert command in section
