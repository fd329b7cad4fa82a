"""Request middleware for plain ASGI applications (HTTP scopes; others pass through)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from agent.sdk.observer import RequestObserver, header_organization

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ASGIMiddleware:
    """Wrap an ASGI app like WSGIMiddleware; the route is ``scope["route"].path`` when a router sets it."""

    def __init__(
        self,
        app: ASGIApp,
        observer: RequestObserver | None = None,
        route_resolver: Callable[[Scope], str | None] | None = None,
        **observer_options: Any,
    ) -> None:
        self.app = app
        self.observer = observer or RequestObserver(**observer_options)
        self.route_resolver = route_resolver

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        state = self.observer.begin(headers.get("x-request-id"), headers.get("traceparent"))
        sizes = {"status": 500, "request": 0, "response": 0}
        limit = self.observer.wants_body()
        captured = bytearray()
        extra_headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in state.response_headers()
        ]

        async def observed_receive() -> Message:
            message = await receive()
            if message.get("type") == "http.request":
                chunk = message.get("body", b"")
                sizes["request"] += len(chunk)
                if len(captured) < limit:
                    captured.extend(chunk[: limit - len(captured)])
            return message

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                sizes["status"] = int(message["status"])
                message = {**message, "headers": [*message.get("headers", ()), *extra_headers]}
            elif message["type"] == "http.response.body":
                sizes["response"] += len(message.get("body", b""))
            await send(message)

        error: BaseException | None = None
        try:
            await self.app(scope, observed_receive, observed_send)
        except BaseException as exc:
            error = exc
            raise
        finally:
            status = 500 if error is not None else sizes["status"]
            header = self.observer.organization_header
            self.observer.finish(
                state,
                method=scope.get("method", "GET"),
                path=scope.get("path", "/"),
                route=self._route(scope),
                status=status,
                request_bytes=sizes["request"],
                response_bytes=sizes["response"],
                query=scope.get("query_string", b"").decode("latin-1"),
                exc=error,
                headers=headers if self.observer.log_headers else None,
                body=bytes(captured) if limit else None,
                organization=header_organization(headers.get(header.lower()), status) if header else None,
            )

    def _route(self, scope: Scope) -> str | None:
        route = scope.get("route")
        path = getattr(route, "path", None) or (route if isinstance(route, str) else None)
        if path is None and self.route_resolver is not None:
            path = self.route_resolver(scope)
        return path
