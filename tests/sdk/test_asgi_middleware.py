"""ASGIMiddleware called as an ASGI server would call it."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from agent.sdk import ASGIMiddleware, RequestObserver, StructuredLogger
from agent.sdk.metrics import ApiMetrics


async def inner_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    scope["route"] = SimpleNamespace(path="/orders/{order_id}")
    StructuredLogger("asgi.app").info("in app")
    if scope["path"] == "/fail":
        raise ValueError("asgi failure")
    await send({"type": "http.response.start", "status": 201, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"created:" + body})


async def call(app: Any, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> list[dict[str, Any]]:
    scope = {"type": "http", "method": "POST", "path": path, "query_string": b"token=abc", "headers": headers}
    sent: list[dict[str, Any]] = []
    chunks = [
        {"type": "http.request", "body": body[:3], "more_body": True},
        {"type": "http.request", "body": body[3:], "more_body": False},
    ]

    async def receive() -> dict[str, Any]:
        return chunks.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


@pytest.fixture
def asgi(capture_logs):
    observer = RequestObserver("api", metrics=ApiMetrics("api"), logger="asgi.requests")
    return (
        ASGIMiddleware(inner_app, observer=observer),
        capture_logs("asgi.requests", logging.INFO),
        capture_logs("asgi.app", logging.INFO),
    )


def test_asgi_request_gets_headers_context_log_and_metrics(asgi):
    app, requests_log, app_log = asgi
    sent = asyncio.run(call(app, "/orders/9", [(b"x-request-id", b"req-asgi")], b"abcdef"))
    headers = dict(sent[0]["headers"])
    assert headers[b"x-request-id"] == b"req-asgi"
    assert headers[b"traceparent"].startswith(b"00-")
    assert app_log.entries()[0]["request_id"] == "req-asgi"
    entry = requests_log.entries()[0]
    assert (entry["status_code"], entry["route"], entry["request_size"]) == (201, "/orders/{order_id}", 6)
    assert entry["response_size"] == len(b"created:abcdef")
    assert entry["query"] == "token=[REDACTED]"
    totals = [s for s in app.observer.metrics.series() if s["name"] == "http_requests_total"]
    assert [(s["labels"]["route"], s["labels"]["status"]) for s in totals] == [("/orders/{order_id}", "201")]


def test_asgi_exception_is_logged_counted_and_reraised(asgi):
    app, requests_log, _ = asgi
    with pytest.raises(ValueError, match="asgi failure"):
        asyncio.run(call(app, "/fail", [], b"abcdef"))
    entry = requests_log.entries()[0]
    assert entry["status_code"] == 500
    assert "ValueError: asgi failure" in entry["exception"]


def test_asgi_concurrent_requests_keep_separate_request_ids(asgi):
    app, _, app_log = asgi

    async def many() -> None:
        await asyncio.gather(
            *(call(app, f"/orders/{i}", [(b"x-request-id", f"r{i}".encode())], b"abcdef") for i in range(20))
        )

    asyncio.run(many())
    assert sorted(e["request_id"] for e in app_log.entries()) == sorted(f"r{i}" for i in range(20))


def test_non_http_scopes_pass_through_untouched(asgi):
    app, requests_log, _ = asgi
    seen = []

    async def lifespan_app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    middleware = ASGIMiddleware(lifespan_app, observer=app.observer)
    asyncio.run(middleware({"type": "lifespan"}, None, None))
    assert seen == ["lifespan"]
    assert requests_log.entries() == []
