"""Every function the code enqueues is on the worker's allow-list (else its jobs would be refused)."""

from __future__ import annotations

import ast
from pathlib import Path

from alerting_worker.jobs_guard import ALLOWED_FUNCTIONS
from alerting_worker.schedule import SCHEDULE

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("alerting_worker", "collector_server")


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _enqueued(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    module = _module(path)
    defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    imported = {
        alias.asname or alias.name: f"{node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in ("enqueue", "enqueue_in", "enqueue_at", "enqueue_call") or not node.args:
            continue
        target = node.args[0] if node.func.attr == "enqueue" else node.args[-1]
        if isinstance(target, ast.Constant) and isinstance(target.value, str):
            found.add(target.value)
        elif isinstance(target, ast.Name):
            found.add(
                imported.get(target.id) or (f"{module}.{target.id}" if target.id in defined else target.id)
            )
    return found


def test_every_enqueued_function_is_allowed():
    enqueued: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                enqueued |= _enqueued(path)
    assert "alerting_worker.alerting.notify_test.deliver_test" in enqueued  # the scan finds enqueues
    assert enqueued - ALLOWED_FUNCTIONS == set()


def test_every_scheduled_function_is_allowed():
    assert {entry.func for entry in SCHEDULE} - ALLOWED_FUNCTIONS == set()
