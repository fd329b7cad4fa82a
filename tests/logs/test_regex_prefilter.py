"""The regex pre-filter (logs.regex_need) never drops a match, and narrows what it should."""

from __future__ import annotations

import random

import pytest
from django.db import DataError, connection, transaction

from collector_server.logs import regex_need, search, words
from collector_server.logs.words import Need
from tests.logs.conftest import record


def lexemes(need: Need | None) -> set[str]:
    if need is None:
        return set()
    if need.op == "lexeme":
        return {need.lexeme}
    return set().union(*(lexemes(part) for part in need.parts))


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("db-9", Need("lexeme", "db-9")),
        ("user 4242 logged", Need("lexeme", "user 4242 logged")),
        ("Conn\\.Refused", Need("lexeme", "conn.refused")),
        ("foo|bar", Need("or", parts=(Need("lexeme", "foo"), Need("lexeme", "bar")))),
        ("to db-[7-8]", Need("or", parts=(Need("lexeme", "to db-7"), Need("lexeme", "to db-8")))),
        ("ab?cde", Need("lexeme", "cde")),  # b is optional: "a" alone gives no trigram
        # "s x" gives the trigram "  x" (x starts a word); "yz" after a repeat gives none
        ("err(or)?s x{2}yz", Need("and", parts=(Need("lexeme", "err"), Need("lexeme", "s x")))),
        ("x(?=abc)defg", Need("lexeme", "defg")),  # a look-ahead requires nothing
        ("[[:alpha:]]+ failed", Need("lexeme", " failed")),
        ("(abc){0,2}xyz", Need("lexeme", "xyz")),
    ],
)
def test_required_pieces(pattern: str, expected: Need) -> None:
    assert regex_need.required(pattern) == expected


@pytest.mark.parametrize(
    "pattern",
    [
        "(?i)abcdef",  # embedded options
        "***=abc.def",  # the literal director: the whole rest is literal
        "\\x41bcdef",  # hex escape: more characters than it looks
        "abc\\bdef",  # \b is a backspace in ARE
        "(\\w+) \\1 again",  # back-reference
        "[a-z]+x",  # nothing literal worth a trigram
        "ab|cdef",  # a branch requires nothing usable
        "a{x}bcdef",  # not a bound
        "caf\u00e9 au lait",  # non-ASCII joins no piece; "caf" and " au lait" do (see below)
    ],
)
def test_gives_up_or_keeps_only_safe_pieces(pattern: str) -> None:
    need = regex_need.required(pattern)
    if pattern.startswith("caf"):
        assert lexemes(need) == {"caf", " au lait"}
    else:
        assert need is None


ALPHABET = ["db", "-", "9", "7", "x", "Y", "abc", " ", ".", "(", ")", "_", "é", "ref", "used", "\n"]
PIECES = [
    "db",
    "-",
    "9",
    "[7-9]",
    "[-_.]",
    "x",
    "Y",
    "abc",
    " ",
    "\\.",
    "\\(",
    ".",
    "(db|abc)",
    "(?:x|Y)",
    "?",
    "+",
    "*",
    "{1,2}",
    "{0,1}",
    "\\d",
    "\\s",
    "[^a]",
    "^",
    "$",
    "(?=db)",
    "ref",
    "used",
    "é",
]


def random_pattern(rng: random.Random) -> str:
    out = ""
    for _ in range(rng.randint(1, 7)):
        piece = rng.choice(PIECES)
        if piece in ("?", "+", "*", "{1,2}", "{0,1}") and (not out or out[-1] in "?+*}|(^$"):
            continue
        out += piece
        if rng.random() < 0.08:
            out += "|"
    return out.rstrip("|") or "db"


@pytest.fixture
def messages(store):
    rng = random.Random(7)
    texts = ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 12))) for _ in range(400)]
    texts += ["DB-9", "to db-8 x", "refused (attempt 9)", "abc.db_9", "xdb-7Y", "dB-99"]
    store([record(text, ago=100 + i) for i, text in enumerate(texts)])
    return texts


@pytest.mark.django_db
def test_prefilter_never_drops_a_match(messages) -> None:
    """Random patterns over random messages: Postgres' own answer with and without the pre-filter agree."""
    rng = random.Random(11)
    checked = narrowed = 0
    for _ in range(250):
        pattern = random_pattern(rng)
        need = regex_need.required(pattern)
        if need is None:
            continue
        clause, args = words.ilike_sql(need)
        for operator in ("~*", "~"):
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(
                        f"SELECT count(*) FILTER (WHERE message {operator} %s), "
                        f"count(*) FILTER (WHERE message {operator} %s AND {clause}), "
                        f"count(*) FILTER (WHERE {clause}) FROM logs_entry",
                        [pattern, pattern, *args, *args],
                    )
                    matches, kept, candidates = cursor.fetchone()
            except DataError:
                continue  # a random pattern Postgres refuses (the API answers 400 for those)
            assert kept == matches, (pattern, operator, need)
            checked += 1
            narrowed += candidates < len(messages)
    assert checked > 100 and narrowed > 50  # the check ran on many patterns, and the pieces do narrow


@pytest.mark.django_db
def test_search_with_prefilter_finds_the_same_rows(store) -> None:
    store(
        [
            record(text, ago=50 + i)
            for i, text in enumerate(["to db-9 now", "DB-9", "db 9", "talking to db-7"])
        ]
    )
    rows, _ = search.run(search.parse({"pattern": "db-[89]"}))
    assert sorted(row["message"] for row in rows) == ["DB-9", "to db-9 now"]
    rows, _ = search.run(search.parse({"pattern": "db-[89]", "case_sensitive": "true"}))
    assert [row["message"] for row in rows] == ["to db-9 now"]
