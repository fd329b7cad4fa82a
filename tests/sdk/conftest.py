"""Fixtures for the SDK tests: a JSON log capture on a named logger."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from agent.sdk import JSONFormatter, clear_context


class JSONCapture:
    """A StreamHandler with the SDK's JSONFormatter; ``entries()`` parses what was written."""

    def __init__(self, logger: logging.Logger) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(JSONFormatter(service="shop"))
        self.logger = logger

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]


@pytest.fixture
def capture_logs() -> Iterator[Any]:
    """Return a function that attaches a JSON capture to a logger name, detached afterwards."""
    captures: list[JSONCapture] = []

    def attach(name: str, level: int = logging.DEBUG) -> JSONCapture:
        logger = logging.getLogger(name)
        capture = JSONCapture(logger)
        logger.addHandler(capture.handler)
        logger.setLevel(level)
        logger.propagate = False
        captures.append(capture)
        return capture

    yield attach
    for capture in captures:
        capture.logger.removeHandler(capture.handler)
        capture.logger.propagate = True
    clear_context()
