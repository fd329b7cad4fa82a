"""log_function_call on sync and async functions: duration, redacted arguments, exceptions."""

from __future__ import annotations

import asyncio
import logging

import pytest

from agent.sdk import log_function_call

LOGGER = "deco.tests"


@log_function_call(logger=LOGGER, level=logging.INFO)
def charge(amount: int, card_number: str, note: str = "") -> int:
    return amount * 2


@log_function_call(logger=LOGGER)
def login(user: str, password: str) -> None:
    raise PermissionError(f"bad password {password!r} for {user}; token=tok_live_123456")


@log_function_call(logger=LOGGER, level=logging.INFO)
async def fetch(url: str, api_key: str) -> str:
    await asyncio.sleep(0.01)
    return url.upper()


@log_function_call(logger=LOGGER)
async def fail_async(secret: str) -> None:
    await asyncio.sleep(0)
    raise RuntimeError("async failure")


@log_function_call
def bare(x: int) -> int:
    return x + 1


def test_sync_call_is_logged_with_duration_and_redacted_arguments(capture_logs):
    capture = capture_logs(LOGGER)
    assert charge(21, card_number="4111111111111111", note="hi") == 42
    (entry,) = capture.entries()
    assert entry["message"] == "charge finished"
    assert entry["function"] == "charge"
    assert entry["function_name"] == "charge"
    assert entry["duration_ms"] >= 0
    assert entry["arguments"] == {"amount": 21, "card_number": "[REDACTED]", "note": "hi"}


def test_sync_exception_is_logged_with_stack_trace_and_reraised(capture_logs):
    capture = capture_logs(LOGGER)
    with pytest.raises(PermissionError, match="bad password"):
        login("bob", password="hunter2")
    (entry,) = capture.entries()
    assert entry["level"] == "ERROR"
    assert entry["message"] == "login raised PermissionError"
    assert "Traceback (most recent call last)" in entry["exception"]
    assert "raise PermissionError" in entry["exception"]
    assert entry["arguments"] == {"user": "bob", "password": "[REDACTED]"}
    assert "tok_live_123456" not in capture.stream.getvalue()


def test_async_call_is_awaited_and_logged_with_its_duration(capture_logs):
    capture = capture_logs(LOGGER)
    assert asyncio.run(fetch("/x", api_key="k-123")) == "/X"
    (entry,) = capture.entries()
    assert entry["message"] == "fetch finished"
    assert entry["duration_ms"] >= 10
    assert entry["arguments"] == {"url": "/x", "api_key": "[REDACTED]"}
    assert asyncio.iscoroutinefunction(fetch)


def test_async_exception_is_logged_and_reraised(capture_logs):
    capture = capture_logs(LOGGER)
    with pytest.raises(RuntimeError, match="async failure"):
        asyncio.run(fail_async(secret="s3cr3t"))
    (entry,) = capture.entries()
    assert entry["level"] == "ERROR"
    assert "RuntimeError: async failure" in entry["exception"]
    assert entry["arguments"] == {"secret": "[REDACTED]"}


def test_bare_decorator_logs_at_debug_to_the_functions_module_logger(capture_logs):
    capture = capture_logs(__name__)
    assert bare(1) == 2
    (entry,) = capture.entries()
    assert entry["level"] == "DEBUG"
    assert entry["arguments"] == {"x": 1}
    assert bare.__name__ == "bare"
