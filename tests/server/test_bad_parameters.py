"""Every invalid query parameter is a 400 whose body names the parameter and the problem."""

from __future__ import annotations

import pytest

from tests.server.conftest import make_host

BAD = [
    ("metrics/system", {"minutes": "ten"}, "minutes", "not an integer"),
    ("metrics/system", {"minutes": "-5"}, "minutes", "below the minimum"),
    ("metrics/system", {"minutes": "0"}, "minutes", "below the minimum"),
    ("metrics/system", {"minutes": "99999999"}, "minutes", "above the maximum"),
    ("metrics/system", {"host": "no-such-host"}, "host", "no host named"),
    ("metrics/summary", {"hours": "1.5"}, "hours", "not an integer"),
    ("metrics/summary", {"hours": "100000"}, "hours", "above the maximum"),
    ("query", {}, "metric", "is required"),
    ("query", {"metric": "bad name!"}, "metric", "not a metric name"),
    ("query", {"metric": "system_load1", "agg": "median"}, "agg", "not one of"),
    ("query", {"metric": "system_load1", "match[]": "host"}, "match[]", "is not label=value"),
    (
        "query",
        {"metric": "system_load1", "match[]": "host=~(unclosed"},
        "match[]",
        "invalid regular expression",
    ),
    ("query", {"metric": "system_load1", "start": "yesterday"}, "start", "not a time"),
    ("query", {"metric": "system_load1", "start": "2000", "end": "1000"}, "end", "not after start"),
    ("query", {"metric": "system_load1", "step": "fast"}, "step", "not a duration"),
    ("query", {"metric": "system_load1", "start": "0", "end": "86400", "step": "1s"}, "step", "too small"),
    ("query", {"metric": "system_load1", "by": "host,9bad"}, "by", "not a label name"),
    ("query", {"metric": "system_load1", "start": "0", "end": "99999999"}, "start", "longer than"),
    # Paging: DRF would silently fall back to its defaults.
    ("hosts", {"limit": "abc"}, "limit", "not an integer"),
    ("hosts", {"limit": "0"}, "limit", "below the minimum"),
    ("hosts", {"limit": "5000"}, "limit", "above the maximum"),
    ("hosts", {"offset": "-5"}, "offset", "below the minimum"),
    ("alerts", {"limit": "ten"}, "limit", "not an integer"),
    # PostgreSQL text cannot hold NUL: refused before any query, on every endpoint.
    ("metrics/system", {"host": "web\x001"}, "host", "NUL"),
    ("query", {"metric": "system_load1", "match[]": "host=a\x00"}, "match[]", "NUL"),
    ("alerts", {"rule": "x\x00"}, "rule", "NUL"),
]


@pytest.mark.parametrize(
    ("path", "params", "name", "problem"), BAD, ids=[f"{b[0]}-{b[2]}-{b[3]}" for b in BAD]
)
def test_bad_parameter_is_a_400_naming_it(api, db, path, params, name, problem):
    make_host("web-1")
    response = api.get(f"/api/v1/monitoring/{path}", params)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["success"] is False
    assert name in body["detail"]
    assert problem in body["detail"][name][0]
    assert body["error"].startswith(f"{name}: ")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query, parameter",
    [
        ("metric=system_cpu_usage_percent&step=" + "9" * 400 + "s", "step"),
        ("metric=system_cpu_usage_percent&step=100000000000000d", "step"),
        ("metric=system_cpu_usage_percent&start=0001-01-01T00:10:00Z", "start"),
        ("metric=system_cpu_usage_percent&match[]=host=~(?P<x>web)", "match[]"),
    ],
)
def test_extreme_query_input_is_a_400_naming_the_parameter(api, query, parameter):
    response = api.get(f"/api/v1/monitoring/query?{query}")
    assert response.status_code == 400, response.content[:300]
    assert parameter in response.json()["detail"]


def test_valid_paging_still_pages(api, db):
    for name in ("web-1", "web-2", "web-3", "web-4", "web-5"):
        make_host(name)
    body = api.get("/api/v1/monitoring/hosts", {"limit": "2", "offset": "1"}).json()
    assert body["count"] == 5 and len(body["data"]) == 2
    assert "offset=3" in body["next"] and body["previous"] is not None


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/monitoring/alerts/history?since=2026-12-01T10:00:00%2B16:00",
        "/api/v1/monitoring/alerts/history?until=1723-03-16T10:33:23-18:03",
        "/api/v1/logs/search?start=1723-03-16T10:33:23-18:03",
        "/api/v1/logs/search?end=2026-12-01T10:00:00%2B23:59",
        "/api/v1/logs/stats?start=2026-12-01T10:00:00-23:30",
        "/api/v1/monitoring/metrics/system?start=2026-12-01T10:00:00%2B20:00",
    ],
)
def test_a_utc_offset_postgres_cannot_store_is_turned_into_utc_not_a_500(api, url):
    # Postgres refuses offsets beyond 15:59 ("time zone displacement out of range"); the same
    # instant in UTC is fine.
    response = api.get(url)
    assert response.status_code in (200, 400), response.content[:300]
    if response.status_code == 400:  # outside what the endpoint accepts (e.g. before 1970)
        assert response.json()["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url, parameter",
    [
        ("/api/v1/monitoring/alerts/history?since=0001-01-01T00:00:00%2B05:00", "since"),
        ("/api/v1/monitoring/alerts/history?until=9999-12-31T23:00:00-05:00", "until"),
        ("/api/v1/logs/search?start=0001-01-01T00:00:00%2B05:00", "start"),
        ("/api/v1/logs/search?end=9999-12-31T23:00:00-05:00", "end"),
        ("/api/v1/monitoring/query?metric=system_load1&start=9999-12-31T23:00:00-05:00", "start"),
    ],
)
def test_a_time_outside_what_utc_can_hold_is_a_400_naming_the_parameter(api, url, parameter):
    response = api.get(url)
    assert response.status_code == 400, response.content[:300]
    assert parameter in response.json()["detail"]
