"""A NUL character in any logs parameter is a 400 naming the parameter, never a 500."""

from __future__ import annotations

import pytest

from tests.logs.conftest import record


@pytest.fixture
def stored(store):
    store([record("hello", service="api", attrs={"k": "v"})])


@pytest.mark.parametrize(
    "name",
    [
        "pattern",
        "host",
        "service",
        "logger",
        "q",
        "request_id",
        "trace_id",
        "span_id",
        "attr.k",
        "level",
        "start",
    ],
)
def test_search_parameter_with_nul_is_a_400_naming_it(api, stored, name):
    response = api.get("/api/v1/logs/search", {name: "a\x00b"})
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["success"] is False
    assert name in body["detail"]
    assert "NUL" in body["error"]


def test_nul_in_a_parameter_name_is_a_400(api, stored):
    response = api.get("/api/v1/logs/search", {"attr.k\x00": "v"})
    assert response.status_code == 400
    assert "NUL" in response.json()["error"]


def test_nul_in_the_request_id_path_is_a_400(api, stored):
    response = api.get("/api/v1/logs/requests/abc%00def")
    assert response.status_code == 400, response.content
    assert "request_id" in response.json()["detail"]


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/v1/logs/stats", "hours"),
        ("/api/v1/monitoring/metrics/api", "minutes"),
        ("/api/v1/logs/requests/r1", "limit"),
    ],
)
def test_nul_in_other_logs_endpoints_is_a_400(api, stored, path, name):
    response = api.get(path, {name: "1\x00"})
    assert response.status_code == 400
    assert name in response.json()["detail"]


def test_search_without_nul_still_works(api, stored):
    body = api.get("/api/v1/logs/search", {"attr.k": "v", "pattern": "hel+o"}).json()
    assert body["count"] == 1
