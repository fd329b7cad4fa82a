"""WSGIMiddleware behind a real WSGI server: ids, headers, request logs, slow warning, metrics."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import pytest

from agent.sdk import RequestObserver, StructuredLogger, WSGIMiddleware
from agent.sdk.metrics import ApiMetrics
from tests.sdk.servers import get, wsgi_server

APP_LOGGER = "wsgi.app"
REQ_LOGGER = "wsgi.requests"
HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    path = environ["PATH_INFO"]
    StructuredLogger(APP_LOGGER).info("handling", path=path)
    if path.startswith("/items/"):
        environ["fleetwatch.route"] = "/items/<id>"
    if path == "/slow":
        time.sleep(0.35)
    if path == "/cleared":
        logger = StructuredLogger(APP_LOGGER)
        logger.set_context(user_id="u-1")
        logger.clear_context()  # the app's fields go; the request's own ids stay
        logger.info("after clear")
    if path == "/boom":
        raise RuntimeError("handler exploded")
    if path == "/missing":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"nope"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello ", b"world"]


@pytest.fixture
def served(capture_logs):
    observer = RequestObserver("shop", slow_threshold_ms=300, metrics=ApiMetrics("shop"), logger=REQ_LOGGER)
    requests_log = capture_logs(REQ_LOGGER, logging.INFO)
    app_log = capture_logs(APP_LOGGER, logging.INFO)
    with wsgi_server(WSGIMiddleware(app, observer=observer)) as url:
        yield url, observer, requests_log, app_log


def test_incoming_request_id_is_kept_in_logs_and_response_header(served):
    url, _, requests_log, app_log = served
    status, headers, body = get(f"{url}/items/7?password=hunter2", {"X-Request-ID": "req-abc123"})
    assert (status, body) == (200, b"hello world")
    assert headers["X-Request-ID"] == "req-abc123"
    (inside,) = app_log.entries()
    assert inside["request_id"] == "req-abc123"
    (entry,) = [e for e in requests_log.entries() if e["message"] == "Request completed"]
    assert entry["request_id"] == "req-abc123"
    assert entry["method"] == "GET"
    assert entry["path"] == "/items/7"
    assert entry["route"] == "/items/<id>"
    assert entry["status_code"] == 200
    assert entry["response_size"] == len(b"hello world")
    assert entry["duration_ms"] > 0
    assert entry["query"] == "password=[REDACTED]"
    assert entry["trace_id"] == inside["trace_id"]
    assert entry["span_id"] == inside["span_id"]


def test_secrets_in_the_path_are_redacted_in_the_request_line(served):
    url, _, requests_log, _ = served
    get(f"{url}/pay/4111111111111111/api_key=AKIA123")
    (entry,) = [e for e in requests_log.entries() if e["message"] == "Request completed"]
    assert entry["path"] == "/pay/[REDACTED]/api_key=[REDACTED]"
    assert "4111111111111111" not in entry["route"] and "AKIA123" not in entry["route"]
    assert entry["method"] == "GET" and entry["status_code"] == 200


def test_traceparent_continues_the_trace_with_a_new_span(served):
    url, _, requests_log, _ = served
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    _, headers, _ = get(f"{url}/x", {"traceparent": parent})
    version, trace_id, span_id, flags = headers["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", "4bf92f3577b34da6a3ce929d0e0e4736", "01")
    assert HEX16.match(span_id) and span_id != "00f067aa0ba902b7"
    entry = requests_log.entries()[0]
    assert entry["trace_id"] == trace_id
    assert entry["span_id"] == span_id
    assert entry["request_id"] == trace_id == headers["X-Request-ID"]


def test_request_without_ids_gets_new_ones_each_time(served):
    url, _, requests_log, _ = served
    _, first, _ = get(f"{url}/a")
    _, second, _ = get(f"{url}/a")
    assert HEX32.match(first["X-Request-ID"]) and HEX32.match(second["X-Request-ID"])
    assert first["X-Request-ID"] != second["X-Request-ID"]
    assert [e["request_id"] for e in requests_log.entries()] == [
        first["X-Request-ID"],
        second["X-Request-ID"],
    ]


@pytest.mark.parametrize(
    "bad", ["00-zz-00f067aa0ba902b7-01", "00-" + "0" * 32 + "-00f067aa0ba902b7-01", "garbage"]
)
def test_invalid_traceparent_starts_a_new_trace(served, bad):
    url, _, _, _ = served
    _, headers, _ = get(f"{url}/a", {"traceparent": bad})
    assert HEX32.match(headers["traceparent"].split("-")[1])
    assert headers["traceparent"].split("-")[1] not in bad


def test_unsafe_request_id_is_replaced(served):
    url, _, requests_log, _ = served
    _, headers, _ = get(f"{url}/a", {"X-Request-ID": "x" * 300})
    assert HEX32.match(headers["X-Request-ID"])
    _, headers, _ = get(f"{url}/a", {"X-Request-ID": "bad id; drop table"})
    assert HEX32.match(headers["X-Request-ID"])
    assert [e["request_id"] for e in requests_log.entries()] == [
        e["trace_id"] for e in requests_log.entries()
    ]


def test_slow_request_logs_a_warning_with_the_threshold(served):
    url, _, requests_log, _ = served
    get(f"{url}/slow")
    get(f"{url}/fast")
    entries = requests_log.entries()
    warnings = [e for e in entries if e["level"] == "WARNING"]
    assert len(warnings) == 1
    assert warnings[0]["message"] == "Slow request"
    assert warnings[0]["path"] == "/slow"
    assert warnings[0]["duration_ms"] >= 350
    assert warnings[0]["slow_threshold_ms"] == 300


def test_exception_in_app_is_logged_as_error_with_traceback_and_counted_as_5xx(served):
    url, observer, requests_log, _ = served
    status, _, _ = get(f"{url}/boom")
    assert status == 500
    entry = requests_log.entries()[0]
    assert entry["level"] == "ERROR"
    assert entry["status_code"] == 500
    assert "RuntimeError: handler exploded" in entry["exception"]
    errors = [s for s in observer.metrics.series() if s["name"] == "http_request_errors_total"]
    assert errors[0]["labels"]["route"] == "/boom" and errors[0]["points"][0][1] == 1


def test_metrics_are_recorded_per_route_with_id_segments_templated(served):
    url, observer, _, _ = served
    for path in ("/items/1", "/items/2", "/users/42/orders", "/users/43/orders", "/missing"):
        get(f"{url}{path}")
    counts = {
        (s["labels"]["route"], s["labels"]["status"]): s["points"][0][1]
        for s in observer.metrics.series()
        if s["name"] == "http_requests_total"
    }
    assert counts == {("/items/<id>", "200"): 2, ("/users/{id}/orders", "200"): 2, ("/missing", "404"): 1}
    sizes = {
        s["labels"]["route"]: s["points"][0][1]
        for s in observer.metrics.series()
        if s["name"] == "http_response_size_bytes_sum"
    }
    assert sizes["/items/<id>"] == 2 * len(b"hello world")
    assert all(s["labels"]["service"] == "shop" for s in observer.metrics.series())


def test_request_body_size_is_counted(served):
    url, observer, requests_log, _ = served
    get(f"{url}/upload", data=b"x" * 1234)
    assert requests_log.entries()[0]["request_size"] == 1234
    sums = [s for s in observer.metrics.series() if s["name"] == "http_request_size_bytes_sum"]
    assert sums[0]["labels"]["method"] == "POST" and sums[0]["points"][0][1] == 1234


def test_failing_request_log_handler_does_not_break_the_response(capture_logs):
    class Broken(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            raise OSError("disk full")

        def handleError(self, record: logging.LogRecord) -> None:
            raise OSError("disk full")

    logger = logging.getLogger("wsgi.broken")
    logger.addHandler(Broken())
    logger.propagate = False
    observer = RequestObserver("shop", metrics=ApiMetrics("shop"), logger=logger)
    try:
        with wsgi_server(WSGIMiddleware(app, observer=observer)) as url:
            status, _, body = get(f"{url}/ok")
    finally:
        logger.handlers.clear()
        logger.propagate = True
    assert (status, body) == (200, b"hello world")
    assert observer.errors == 1


def test_clear_context_inside_a_request_keeps_the_request_ids(served):
    url, _, requests_log, app_log = served
    status, headers, _ = get(f"{url}/cleared", {"X-Request-ID": "req-clear-1"})
    assert status == 200 and headers["X-Request-ID"] == "req-clear-1"
    after = next(e for e in app_log.entries() if e["message"] == "after clear")
    assert after["request_id"] == "req-clear-1"
    assert HEX32.match(after["trace_id"]) and HEX16.match(after["span_id"])
    assert "user_id" not in after
    (done,) = [e for e in requests_log.entries() if e["message"] == "Request completed"]
    assert (done["request_id"], done["trace_id"], done["span_id"]) == (
        "req-clear-1",
        after["trace_id"],
        after["span_id"],
    )


def test_clear_context_outside_a_request_still_clears_everything():
    from agent.sdk import clear_context, get_context, set_context

    set_context(request_id="left-over", user_id="u")
    clear_context()
    assert dict(get_context()) == {}
