"""GET /api/v1/logs/search: filters, bad parameters, cursor pagination."""

from __future__ import annotations

import time

import pytest

from tests.logs.conftest import record

URL = "/api/v1/logs/search"


@pytest.fixture
def corpus(store):
    """A small, varied set of records on two hosts and two services."""
    store(
        [
            record(
                "GET /api/v1/generate completed in 150ms",
                ago=50,
                service="api",
                request_id="req-1",
                logger="api.requests",
                attrs={"user_id": 42},
            ),
            record(
                "database timeout after 3000ms",
                level="ERROR",
                ago=40,
                service="api",
                request_id="req-1",
                trace_id="trace-9",
                span_id="span-3",
            ),
            record("cache warmed", level="DEBUG", ago=30, service="worker", attrs={"user_id": "42"}),
            record(
                "Disk nearly full on /var", level="WARNING", ago=20, service="worker", attrs={"user_id": 7}
            ),
        ],
        host="web-1",
    )
    store(
        [
            record(
                "payment failed: card declined",
                level="CRITICAL",
                ago=10,
                service="billing",
                request_id="req-2",
                attrs={"retry": True},
            ),
            record("worker started", ago=5, service="worker"),
        ],
        host="web-2",
    )


def messages(response) -> list[str]:
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["success"] is True
    assert body["count"] == len(body["data"])
    return [row["message"] for row in body["data"]]


def test_search_requires_authentication(client, corpus):
    assert client.get(URL).status_code in (401, 403)


def test_default_search_returns_newest_first(api, corpus):
    found = messages(api.get(URL))
    assert found[0] == "worker started"
    assert found[-1] == "GET /api/v1/generate completed in 150ms"
    assert len(found) == 6


def test_search_by_request_id_returns_only_that_request(api, corpus):
    assert messages(api.get(URL, {"request_id": "req-1", "order": "oldest"})) == [
        "GET /api/v1/generate completed in 150ms",
        "database timeout after 3000ms",
    ]


def test_search_by_trace_and_span_id(api, corpus):
    assert messages(api.get(URL, {"trace_id": "trace-9", "span_id": "span-3"})) == [
        "database timeout after 3000ms"
    ]


def test_regex_pattern_is_case_insensitive_unless_asked(api, corpus):
    assert messages(api.get(URL, {"pattern": r"TIMEOUT after \d+ms"})) == ["database timeout after 3000ms"]
    assert messages(api.get(URL, {"pattern": r"TIMEOUT after \d+ms", "case_sensitive": "true"})) == []


def test_substring_pattern_matches_inside_words(api, corpus):
    assert messages(api.get(URL, {"pattern": "declin"})) == ["payment failed: card declined"]


def test_exact_level_and_minimum_level(api, corpus):
    assert messages(api.get(URL, {"level": "ERROR"})) == ["database timeout after 3000ms"]
    assert messages(api.get(URL, {"level": "debug,warning", "order": "oldest"})) == [
        "cache warmed",
        "Disk nearly full on /var",
    ]
    assert messages(api.get(URL, {"min_level": "ERROR"})) == [
        "payment failed: card declined",
        "database timeout after 3000ms",
    ]


def test_words_search_uses_full_text(api, corpus):
    assert messages(api.get(URL, {"q": "card declined"})) == ["payment failed: card declined"]
    assert messages(api.get(URL, {"q": "worker"})) == ["worker started"]
    assert messages(api.get(URL, {"q": "decline"})) == []  # words, not substrings


def test_host_and_service_filters(api, corpus):
    assert messages(api.get(URL, {"host": "web-2", "service": "worker"})) == ["worker started"]
    assert len(messages(api.get(URL, {"service": "worker"}))) == 3
    assert len(messages(api.get(URL, {"host": "web-1"}))) == 4


def test_attribute_filter_matches_numbers_and_strings(api, corpus):
    assert messages(api.get(URL, {"attr.user_id": "42", "order": "oldest"})) == [
        "GET /api/v1/generate completed in 150ms",
        "cache warmed",
    ]
    assert messages(api.get(URL, {"attr.retry": "true"})) == ["payment failed: card declined"]
    assert messages(api.get(URL, {"attr.user_id": "8"})) == []


def test_time_range_filters(api, corpus):
    now = time.time()
    found = messages(api.get(URL, {"start": str(now - 35), "end": str(now - 8)}))
    assert found == ["payment failed: card declined", "Disk nearly full on /var", "cache warmed"]


def test_result_rows_have_the_documented_fields(api, corpus):
    row = api.get(URL, {"request_id": "req-2"}).json()["data"][0]
    assert row["host"] == "web-2"
    assert row["service"] == "billing"
    assert row["level"] == "CRITICAL"
    assert row["attributes"] == {"retry": True}
    assert row["timestamp"].endswith("Z")


@pytest.mark.parametrize(
    ("params", "name", "words"),
    [
        ({"pattern": "(unclosed"}, "pattern", "not a valid regular expression"),
        ({"pattern": "a{2,1}"}, "pattern", "not a valid regular expression"),
        ({"level": "LOUD"}, "level", "not a level"),
        ({"min_level": "12x"}, "min_level", "not a level"),
        ({"start": "yesterday"}, "start", "not a time"),
        ({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "start", "before end"),
        ({"limit": "0"}, "limit", "between 1 and 1000"),
        ({"limit": "ten"}, "limit", "not an integer"),
        ({"order": "sideways"}, "order", "not one of"),
        ({"cursor": "garbage!"}, "cursor", "not a cursor"),
        ({"q": "!!!"}, "q", "at least one word"),
        ({"levle": "ERROR"}, "levle", "unknown parameter"),
        ({"attr.bad key": "1"}, "attr.bad key", "attribute names"),
        ({"case_sensitive": "maybe"}, "case_sensitive", "not a boolean"),
    ],
)
def test_bad_parameters_get_400_naming_the_parameter(api, corpus, params, name, words):
    response = api.get(URL, params)
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False
    assert name in body["detail"]
    assert words in body["error"]


def test_regex_valid_in_python_but_not_in_postgres_is_a_400(api, corpus):
    response = api.get(URL, {"pattern": r"(?P<word>\w+)"})
    assert response.status_code == 400
    assert "pattern" in response.json()["detail"]
    assert "not a valid regular expression" in response.json()["error"]
    assert api.get(URL).status_code == 200  # the connection is still usable


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_cursor_pagination_walks_every_row_once(api, store, order):
    total = 257
    now = time.time()
    # Several rows share a timestamp so the id tie-breaker matters.
    store([{"ts": now - 100 + (i // 3), "level": "INFO", "message": f"m{i}"} for i in range(total)])
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 20, "order": order, **({"cursor": cursor} if cursor else {})}
        body = api.get(URL, params).json()
        seen.extend(row["message"] for row in body["data"])
        cursor = body["next_cursor"]
        pages += 1
        if cursor is None:
            break
    assert pages == 13
    assert len(seen) == total
    assert len(set(seen)) == total
    expected = [f"m{i}" for i in range(total)]
    ordered = sorted(seen, key=lambda m: int(m[1:]))
    assert ordered == expected
    stamps_in_order = seen if order == "oldest" else seen[::-1]
    assert [int(m[1:]) // 3 for m in stamps_in_order] == sorted(int(m[1:]) // 3 for m in seen)


def test_cursor_from_the_other_order_is_refused(api, store):
    store([record(f"m{i}", ago=i) for i in range(3)])
    cursor = api.get(URL, {"limit": 1}).json()["next_cursor"]
    response = api.get(URL, {"limit": 1, "order": "oldest", "cursor": cursor})
    assert response.status_code == 400
    assert "cursor" in response.json()["detail"]
