"""Word search (q=) without a full-text index: same answers as the full-text test, fast paths aside."""

from __future__ import annotations

import pytest

from collector_server.logs import search, words
from tests.logs.conftest import fetch_all, record

URL = "/api/v1/logs/search"
FILLER = 2500  # more than search.WORDS_WINDOW_MIN, so older matches lie beyond the first walk


def expected_ids(q: str, newest_first: bool = True) -> list[int]:
    """Every matching id by the definition of a word search, computed over the whole table."""
    direction = "DESC" if newest_first else "ASC"
    rows = fetch_all(
        "SELECT id FROM logs_entry WHERE to_tsvector('simple', message) @@ websearch_to_tsquery('simple', %s) "
        f"ORDER BY ts {direction}, id {direction}",
        [q],
    )
    return [row_id for (row_id,) in rows]


def all_pages(api, params: dict[str, str]) -> list[int]:
    ids: list[int] = []
    cursor = None
    while True:
        response = api.get(URL, {**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.content
        ids += [row["id"] for row in response.json()["data"]]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return ids


@pytest.fixture
def old_and_new_matches(store):
    """Matches older than FILLER newer non-matching rows, and a few among the newest rows."""
    store(
        [
            record("payment failed: card declined", ago=3000, level="ERROR"),
            record("Card DECLINED by issuer", ago=2990),
            record("card accepted, payment ok", ago=2980),
            record("it's a db-3 timeout_after 40ms", ago=2970),
            record("declined: card", ago=2960),
        ]
    )
    store([record(f"noise line {i} nothing to see", ago=2900 - i) for i in range(FILLER)])
    store([record("card declined again", ago=5), record("payment declined twice", ago=4)])


@pytest.mark.parametrize(
    "q",
    [
        "card declined",
        '"card declined"',
        "card -declined",
        "card or payment",
        "declined or -card",  # one branch requires nothing: no index condition at all
        "-noise",
        "db-3",
        "it's",
        "timeout_after",
        "DECLINED",
        "nothing",
    ],
)
def test_word_search_returns_exactly_the_full_text_matches_across_pages(api, old_and_new_matches, q):
    want = expected_ids(q)
    assert want, "the fixture should hold matches for every query"
    assert all_pages(api, {"q": q, "limit": "2"} if len(want) < 50 else {"q": q, "limit": "1000"}) == want


def test_word_search_oldest_first_walks_from_the_other_end(api, old_and_new_matches):
    assert all_pages(api, {"q": "card", "order": "oldest", "limit": "3"}) == expected_ids("card", False)


def test_frequent_word_page_is_filled_from_the_newest_rows(api, old_and_new_matches):
    response = api.get(URL, {"q": "noise", "limit": "10"})
    data = response.json()["data"]
    assert [row["message"] for row in data] == [
        f"noise line {i} nothing to see" for i in range(2499, 2489, -1)
    ]
    assert response.json()["next_cursor"] is not None


def test_word_search_combines_with_other_filters(api, old_and_new_matches):
    response = api.get(URL, {"q": "card declined", "level": "ERROR"})
    assert [row["message"] for row in response.json()["data"]] == ["payment failed: card declined"]


def test_required_lexemes_follow_and_or_not():
    need = words.required("'card' <-> 'declined' & !'foo'")
    assert need == words.Need("and", parts=(words.Need("lexeme", "card"), words.Need("lexeme", "declined")))
    assert words.required("( 'abc' | 'def' ) & 'ghi'") == words.Need(
        "and",
        parts=(
            words.Need("or", parts=(words.Need("lexeme", "abc"), words.Need("lexeme", "def"))),
            words.Need("lexeme", "ghi"),
        ),
    )


def test_nothing_is_required_by_negations_short_lexemes_or_an_open_branch():
    assert words.required("!'foo'") is None
    assert words.required("'ab' & 'to'") is None
    assert words.required("'card' | !'foo'") is None
    assert words.required("") is None
    assert words.required("'card' &") is None  # a form the parser does not know: no condition


def test_quoted_lexemes_are_unescaped_and_like_wildcards_escaped():
    need = words.required("'it''s' & '50%_off'")
    assert need == words.Need("and", parts=(words.Need("lexeme", "it's"), words.Need("lexeme", "50%_off")))
    sql, args = words.ilike_sql(need)
    assert sql == "(message ILIKE %s AND message ILIKE %s)"
    assert args == ["%it's%", "%50\\%\\_off%"]


def test_percent_and_underscore_in_words_are_not_wildcards(api, store):
    store([record("discount 50%_off today"), record("discount 50xyoff today", ago=30)])
    response = api.get(URL, {"q": "50%_off"})
    assert [row["message"] for row in response.json()["data"]] == expected_messages("50%_off")


def expected_messages(q: str) -> list[str]:
    rows = fetch_all(
        "SELECT message FROM logs_entry WHERE to_tsvector('simple', message) @@ websearch_to_tsquery('simple', %s) "
        "ORDER BY ts DESC, id DESC",
        [q],
    )
    return [message for (message,) in rows]


def test_word_search_sql_tests_words_with_the_index_and_full_text(db):
    q = search.parse({"q": "card declined"})
    q.words_need = words.required(search.tsquery_text(q.words))
    sql, args = search.build_sql(q)
    assert "message ILIKE %s AND message ILIKE %s" in sql
    assert "websearch_to_tsquery('simple', %s)" in sql
    assert args[:3] == ["%card%", "%declined%", "card declined"]
