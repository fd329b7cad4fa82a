"""Fixtures for the deployment tests: the real Compose implementation and Helm's own engine.

None of these tests needs Postgres or Redis; they read the deployment files the way
`docker compose` and `helm install` would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import helm_python
import pytest

from .manifests import CHART, ENV_EXAMPLE, NAMESPACE, RELEASE, resolved_compose, split_manifests

Render = Callable[..., list[dict[str, Any]]]


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    """The compose file resolved with the documented example settings."""
    return resolved_compose(ENV_EXAMPLE)


@pytest.fixture(scope="session")
def chart() -> Iterator[helm_python.Chart]:
    with helm_python.Chart.load(CHART) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def render(chart: helm_python.Chart) -> Render:
    """Render the chart with the given values, as `helm template fw helm/ -n monitoring` would."""

    def _render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return split_manifests(chart.render(values, name=RELEASE, namespace=NAMESPACE))

    return _render
