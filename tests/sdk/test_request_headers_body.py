"""The request line can carry the request's headers and a capped body prefix, both redacted."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from agent.sdk import RequestObserver, WSGIMiddleware
from agent.sdk.metrics import ApiMetrics
from tests.sdk.servers import get, wsgi_server

REQ_LOGGER = "hb.requests"


def echo(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Answer with what the app read from its input: the middleware must not have eaten it."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    data = environ["wsgi.input"].read(length)
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [data]


def serve(capture_logs, **options: Any):
    observer = RequestObserver("hb", metrics=ApiMetrics("hb"), logger=REQ_LOGGER, **options)
    return capture_logs(REQ_LOGGER, logging.INFO), wsgi_server(WSGIMiddleware(echo, observer=observer))


def test_headers_are_logged_redacted_and_bodies_are_off_by_default(capture_logs):
    log, server = serve(capture_logs)
    with server as url:
        body = json.dumps({"user": "ann", "password": "hunter2"}).encode()
        status, _, echoed = get(url + "/login", {"Authorization": "Bearer abc.def.ghi", "X-Team": "a"}, body)
    assert (status, echoed) == (200, body)
    [entry] = log.entries()
    headers = entry["request_headers"]
    assert headers["X-Team"] == "a" and headers["Authorization"] == "[REDACTED]"
    assert "request_body" not in entry


def test_body_prefix_is_capped_and_redacted_and_the_app_still_reads_it_all(capture_logs):
    log, server = serve(capture_logs, log_body_bytes=64)
    small = json.dumps({"user": "ann", "password": "hunter2"}).encode()
    large = b"token=s3cr3t-value&" + b"x" * 500
    with server as url:
        assert get(url + "/a", {"Content-Type": "application/json"}, small)[2] == small
        assert get(url + "/b", {}, large)[2] == large
    first, second = log.entries()
    assert json.loads(first["request_body"]) == {"user": "ann", "password": "[REDACTED]"}
    assert first["request_body_truncated"] is False
    assert second["request_body_truncated"] is True and len(second["request_body"]) <= 64
    assert "s3cr3t" not in second["request_body"]


def test_body_cap_is_bounded():
    with pytest.raises(ValueError, match="log_body_bytes"):
        RequestObserver("hb", log_body_bytes=10**7)


def test_django_middleware_logs_headers_and_body_when_asked(client, settings, capture_logs):
    settings.ROOT_URLCONF = "tests.sdk.django_urls"
    settings.MIDDLEWARE = ["agent.sdk.django.RequestLoggingMiddleware"]
    settings.FLEETWATCH_SDK = {"service": "hb-dj", "logger": "hbdj.requests", "log_body_bytes": 100}
    log = capture_logs("hbdj.requests", logging.INFO)
    client.post(
        "/api/items/3/", {"card": "4111 1111 1111 1111"}, content_type="application/json", HTTP_X_A="b"
    )
    [entry] = log.entries()
    assert entry["request_headers"]["X-A"] == "b"
    assert "4111" not in entry["request_body"]
