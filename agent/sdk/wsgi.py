"""Request middleware for plain WSGI applications."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from agent.sdk.observer import RequestObserver, RequestState, header_organization

ROUTE_ENVIRON_KEY = "fleetwatch.route"
BODY_ENVIRON_KEY = "fleetwatch.request_body"
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
        self._capture_body(environ)
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

    def _capture_body(self, environ: dict[str, Any]) -> None:
        """Read the first bytes of the body for the log and put them back in front of the stream."""
        limit = self.observer.wants_body()
        stream = environ.get("wsgi.input")
        if not limit or stream is None:
            return
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return
        prefix = stream.read(min(limit, length)) if length > 0 else b""
        environ[BODY_ENVIRON_KEY] = prefix
        environ["wsgi.input"] = _ReplayedInput(prefix, stream)

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
            headers=_headers(environ) if self.observer.log_headers else None,
            body=environ.get(BODY_ENVIRON_KEY),
            organization=_organization(environ, self.observer.organization_header, status),
        )


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    out = {k[5:].replace("_", "-").title(): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
    for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(name):
            out[name.replace("_", "-").title()] = str(environ[name])
    return out


class _ReplayedInput:
    """wsgi.input with the bytes already read for the log served again first."""

    def __init__(self, prefix: bytes, rest: Any) -> None:
        self.prefix = prefix
        self.rest = rest

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            data, self.prefix = self.prefix + self.rest.read(), b""
            return data
        head, self.prefix = self.prefix[:size], self.prefix[size:]
        return head + (self.rest.read(size - len(head)) if len(head) < size else b"")

    def readline(self, size: int = -1) -> bytes:
        if self.prefix:
            cut = self.prefix.find(b"\n") + 1 or len(self.prefix)
            if 0 <= size < cut:
                cut = size
            head, self.prefix = self.prefix[:cut], self.prefix[cut:]
            if head.endswith(b"\n") or (0 <= size == len(head)):
                return head
            return head + self.rest.readline(-1 if size < 0 else size - len(head))
        return self.rest.readline(size)

    def readlines(self, hint: int = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")


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


def _organization(environ: dict[str, Any], name: str | None, status: int) -> str | None:
    """The organisation header of a request the security counters count (403, 429; never a 401's)."""
    if not name:
        return None
    return header_organization(environ.get("HTTP_" + name.upper().replace("-", "_")), status)
