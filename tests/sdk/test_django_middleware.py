"""The Django middleware through Django's test client."""

from __future__ import annotations

import logging

import pytest

from agent.sdk.metrics import metrics_for

MIDDLEWARE = "agent.sdk.django.RequestLoggingMiddleware"


@pytest.fixture
def django_app(settings, capture_logs):
    settings.ROOT_URLCONF = "tests.sdk.django_urls"
    settings.MIDDLEWARE = [MIDDLEWARE, "django.middleware.common.CommonMiddleware"]
    settings.FLEETWATCH_SDK = {"service": "shop-dj", "slow_threshold_ms": 80, "logger": "dj.requests"}
    metrics = metrics_for("shop-dj")
    metrics._endpoints.clear()
    return capture_logs("dj.requests", logging.INFO), capture_logs("dj.app", logging.INFO), metrics


def test_django_request_id_from_header_reaches_view_logs_and_response(client, django_app):
    requests_log, app_log, _ = django_app
    response = client.get("/api/items/5/", HTTP_X_REQUEST_ID="req-dj-1")
    assert response.status_code == 200
    assert response["X-Request-ID"] == "req-dj-1"
    assert app_log.entries()[0]["request_id"] == "req-dj-1"
    entry = requests_log.entries()[0]
    assert entry["route"] == "/api/items/<int:item_id>/"
    assert entry["path"] == "/api/items/5/"
    assert entry["status_code"] == 200
    assert entry["response_size"] == len(response.content)
    assert entry["service"] == "shop"  # the capture formatter's service name


def test_django_traceparent_is_continued(client, django_app):
    requests_log, _, _ = django_app
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    response = client.get("/api/items/1/", HTTP_TRACEPARENT=parent)
    assert response["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-")
    assert requests_log.entries()[0]["trace_id"] == "0af7651916cd43dd8448eb211c80319c"


def test_django_slow_view_logs_a_warning(client, django_app):
    requests_log, _, _ = django_app
    client.get("/api/slow/")
    levels = [(e["level"], e["message"]) for e in requests_log.entries()]
    assert levels == [("INFO", "Request completed"), ("WARNING", "Slow request")]


def test_django_metrics_use_the_url_pattern_as_route_and_count_errors(client, django_app):
    _, _, metrics = django_app
    client.raise_request_exception = False
    for item_id in (1, 2, 3):
        client.get(f"/api/items/{item_id}/")
    assert client.get("/api/broken/").status_code == 500
    series = metrics.series()
    requests = {
        (s["labels"]["route"], s["labels"]["status"]): s["points"][0][1]
        for s in series
        if s["name"] == "http_requests_total"
    }
    assert requests == {("/api/items/<int:item_id>/", "200"): 3, ("/api/broken/", "500"): 1}
    errors = {
        s["labels"]["route"]: s["points"][0][1] for s in series if s["name"] == "http_request_errors_total"
    }
    assert errors == {"/api/items/<int:item_id>/": 0, "/api/broken/": 1}
    counts = [s for s in series if s["name"] == "http_request_duration_seconds_count"]
    assert {s["labels"]["service"] for s in counts} == {"shop-dj"}


def test_unknown_sdk_setting_stops_startup_naming_it(settings):
    from django.core.exceptions import ImproperlyConfigured

    from agent.sdk.django import observer_from_settings

    settings.FLEETWATCH_SDK = {"service": "x", "slow_treshold_ms": 5}
    with pytest.raises(ImproperlyConfigured, match="slow_treshold_ms"):
        observer_from_settings()


def test_django_unmatched_paths_share_one_route(client, django_app):
    _, _, metrics = django_app
    for index in range(5):
        assert client.get(f"/wp-admin/probe{index}.php").status_code == 404
    routes = {s["labels"]["route"] for s in metrics.series() if s["name"] == "http_requests_total"}
    assert routes == {"__unmatched__"}


@pytest.fixture
def agent_socket(monkeypatch):
    """A datagram socket at the default agent path ($FLEETWATCH_AGENT_SOCKET), as the agent binds it."""
    import shutil
    import socket
    import tempfile

    folder = tempfile.mkdtemp(prefix="fw-dj-", dir="/tmp")
    path = f"{folder}/agent.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    monkeypatch.setenv("FLEETWATCH_AGENT_SOCKET", path)
    yield sock
    sock.close()
    shutil.rmtree(folder, ignore_errors=True)


def test_django_ships_metrics_to_the_default_socket_without_socket_path(settings, agent_socket):
    from django.http import HttpResponse
    from django.test import RequestFactory

    from agent.sdk.django import RequestLoggingMiddleware
    from agent.sdk.protocol import METRICS, unpack

    settings.FLEETWATCH_SDK = {"service": "shop-default", "flush_interval": 0.1, "log_requests": False}
    middleware = RequestLoggingMiddleware(lambda request: HttpResponse("ok"))
    try:
        assert middleware.observer.client is not None
        assert middleware.observer.client.socket_path == agent_socket.getsockname()
        for _ in range(3):
            assert middleware(RequestFactory().get("/x")).status_code == 200
        totals: list = []
        while not totals or totals[0]["points"][0][1] < 3:  # a flush may land between requests
            message = unpack(agent_socket.recv(65536))  # times out after 5 s
            assert message["t"] == METRICS
            totals = [s for s in message["series"] if s["name"] == "http_requests_total"]
    finally:
        middleware.observer.close()
    assert [(s["labels"]["service"], s["points"][0][1]) for s in totals] == [("shop-default", 3.0)]


@pytest.mark.parametrize("option", [{"ship_metrics": False}, {"socket_path": None}])
def test_django_metric_shipping_can_be_switched_off(settings, option):
    from agent.sdk.django import observer_from_settings

    settings.FLEETWATCH_SDK = {"service": "x", **option}
    observer = observer_from_settings()
    assert observer.client is None and observer.flusher is None


def test_django_ship_metrics_must_be_a_boolean(settings):
    from django.core.exceptions import ImproperlyConfigured

    from agent.sdk.django import observer_from_settings

    settings.FLEETWATCH_SDK = {"service": "x", "ship_metrics": "no"}
    with pytest.raises(ImproperlyConfigured, match="ship_metrics"):
        observer_from_settings()
