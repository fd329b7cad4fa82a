"""Request middleware for plain WSGI applications."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from agent.sdk.observer import RequestObserver, RequestState

ROUTE_ENVIRON_KEY = "fleetwatch.route"
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class WSGIMiddleware:
    """Wrap a WSGI app: ids in context and response headers, request log, per-route metrics.

    The route is ``environ["fleetwatch.route"]`` if the app sets it, else ``route_resolver(environ)``,
    else the path with id-like segments replaced by ``{id}``.
    """

    def __init__(
        self,
        app: WSGIApp,
        observer: RequestObserver | None = None,
        route_resolver: Callable[[dict[str, Any]], str | None] | None = None,
        **observer_options: Any,
    ) -> None:
        self.app = app
        self.observer = observer or RequestObserver(**observer_options)
        self.route_resolver = route_resolver

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        state = self.observer.begin(environ.get("HTTP_X_REQUEST_ID"), environ.get("HTTP_TRACEPARENT"))
        status_box = [500]

        def observed_start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status_box[0] = int(status[:3])
            return start_response(status, [*headers, *state.response_headers()], exc_info)

        try:
            body = self.app(environ, observed_start_response)
        except BaseException as exc:
            self._finish(environ, state, 500, 0, exc)
            raise
        return _ObservedBody(body, lambda size, exc: self._finish(environ, state, status_box[0], size, exc))

    def _finish(
        self, environ: dict[str, Any], state: RequestState, status: int, size: int, exc: BaseException | None
    ) -> None:
        route = environ.get(ROUTE_ENVIRON_KEY)
        if route is None and self.route_resolver is not None:
            route = self.route_resolver(environ)
        try:
            request_bytes = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            request_bytes = 0
        self.observer.finish(
            state,
            method=environ.get("REQUEST_METHOD", "GET"),
            path=environ.get("PATH_INFO", "") or "/",
            route=route,
            status=status if exc is None else 500,
            request_bytes=request_bytes,
            response_bytes=size,
            query=environ.get("QUERY_STRING", ""),
            exc=exc,
        )


class _ObservedBody:
    """Count the bytes of a WSGI response body and report once when the server closes it."""

    def __init__(self, body: Iterable[bytes], done: Callable[[int, BaseException | None], None]) -> None:
        self.body = body
        self.done = done
        self.size = 0
        self.error: BaseException | None = None
        self.reported = False

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self.body:
                self.size += len(chunk)
                yield chunk
        except BaseException as exc:
            self.error = exc
            raise

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            if not self.reported:
                self.reported = True
                self.done(self.size, self.error)
