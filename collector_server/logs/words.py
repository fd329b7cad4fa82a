"""Word search (q=) through the trigram index: ILIKE conditions every match must meet.

A word search means ``to_tsvector('simple', message) @@ websearch_to_tsquery('simple', q)``
and that condition alone decides which rows match. There is no full-text index (it cost
about +15 us per ingested row), so to find candidate rows fast the search adds
``message ILIKE '%lexeme%'`` conditions, which the pg_trgm GIN index on message serves.

They are derived from the tsquery Postgres itself builds (its text form, e.g.
``'card' <-> 'declined' & !'foo'``): every lexeme of a 'simple' tsvector is a lowercased
piece of the message, so a row can only match when it contains, case-insensitively, each
lexeme the query requires. Required means: under ``&`` and ``<->`` all of them, under ``|``
one of each branch, under ``!`` none (a negated word requires nothing). Lexemes shorter
than 3 characters give no trigram and are left out; when nothing is required (``-word``
alone, or ``a or -b``) no condition is added and the search scans the time range instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MIN_LEXEME_CHARS = 3
_TOKEN = re.compile(r"\s*(?:'((?:[^'\\]|''|\\.)*)'(?::[*A-Da-d]+)?|(<->|<\d+>)|([&|!()]))")


@dataclass(frozen=True)
class Need:
    """What a matching message must contain: a lexeme, all of `parts`, or one of `parts`."""

    op: str  # "lexeme", "and", "or"
    lexeme: str = ""
    parts: tuple[Need, ...] = ()


def required(tsquery_text: str) -> Need | None:
    """Return what every row matching this tsquery must contain, or None when nothing usable is."""
    try:
        tokens = _tokens(tsquery_text)
        need, position = _or(tokens, 0)
    except ValueError:
        return None  # a form this parser does not know: add no condition, the tsquery still decides
    return need if position == len(tokens) else None


def ilike_sql(need: Need) -> tuple[str, list[str]]:
    """Return the SQL condition (on column ``message``) and its parameters for `need`."""
    if need.op == "lexeme":
        return "message ILIKE %s", [f"%{escape_like(need.lexeme)}%"]
    parts = [ilike_sql(part) for part in need.parts]
    joiner = " AND " if need.op == "and" else " OR "
    return "(" + joiner.join(sql for sql, _ in parts) + ")", [arg for _, args in parts for arg in args]


def escape_like(text: str) -> str:
    """Escape LIKE's wildcards and its escape character."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ValueError(f"unexpected {text[position:]!r}")
        lexeme, phrase, op = match.groups()
        if lexeme is not None:
            tokens.append(("lexeme", re.sub(r"''|\\(.)", lambda m: m.group(1) or "'", lexeme)))
        else:
            tokens.append(("op", "&" if phrase else op))
        position = match.end()
    return tokens


def _or(tokens: list[tuple[str, str]], position: int) -> tuple[Need | None, int]:
    parts = []
    need, position = _and(tokens, position)
    parts.append(need)
    while position < len(tokens) and tokens[position] == ("op", "|"):
        need, position = _and(tokens, position + 1)
        parts.append(need)
    if len(parts) == 1:
        return parts[0], position
    if any(part is None for part in parts):
        return None, position  # one branch requires nothing, so the whole OR requires nothing
    return Need("or", parts=tuple(p for p in parts if p is not None)), position


def _and(tokens: list[tuple[str, str]], position: int) -> tuple[Need | None, int]:
    need, position = _unary(tokens, position)
    parts = [need]
    while position < len(tokens) and tokens[position] == ("op", "&"):
        need, position = _unary(tokens, position + 1)
        parts.append(need)
    kept = tuple(part for part in parts if part is not None)
    if not kept:
        return None, position
    return (kept[0] if len(kept) == 1 else Need("and", parts=kept)), position


def _unary(tokens: list[tuple[str, str]], position: int) -> tuple[Need | None, int]:
    if position >= len(tokens):
        raise ValueError("operand expected")
    kind, value = tokens[position]
    if kind == "lexeme":
        return (Need("lexeme", value) if len(value) >= MIN_LEXEME_CHARS else None), position + 1
    if value == "!":
        _, position = _unary(tokens, position + 1)
        return None, position
    if value == "(":
        need, position = _or(tokens, position + 1)
        if position >= len(tokens) or tokens[position] != ("op", ")"):
            raise ValueError("')' expected")
        return need, position + 1
    raise ValueError(f"operand expected, got {value!r}")
