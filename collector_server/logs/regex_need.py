"""A cheaper pre-filter for regex search: the literal pieces every match must contain.

pg_trgm serves ``message ~* pattern`` with trigrams of *words* only (letters and digits):
for ``db-9`` it asks the index for rows holding the words ``db`` and ``9`` somewhere, which in
ordinary logs is every tenth row, and each candidate is then read and tested (about 3 s at
10 million rows). The same index answers ``message ILIKE '%db-9%'`` far more precisely (pg_trgm
knows there that ``9`` starts a word right after ``db``), so the search adds one ILIKE
condition per literal piece the regex requires. They only narrow the candidates: the regex
still decides every row, and a piece is only taken when every match of the regex is sure to
contain it.

The parser reads the subset of PostgreSQL's advanced regular expressions (ARE) whose meaning is
certain: literal characters, escaped punctuation, ``.``, brackets, groups (also ``(?:``,
look-arounds), ``|``, quantifiers and anchors. Anything else (embedded options ``(?i)``, the
``***`` director, escapes such as ``\\x41`` or back-references, a brace that is not a bound)
makes it give up: no condition is added and the pattern is served as before. Only ASCII
characters join a piece (case folding of other characters may differ between ILIKE and the
regex), and a piece is kept only when pg_trgm extracts at least one trigram from it.
"""

from __future__ import annotations

import re

from collector_server.logs.words import Need

# Class and constraint escapes that stand for one unknown character or none (no literal).
_SAFE_ESCAPES = set("dDsSwWmMyYAZ")
_BOUND = re.compile(r"\{(\d{1,4})(,(\d{0,4}))?\}")
MAX_VARIANTS = 4  # a small bracket ([7-9]) multiplies the piece into variants, OR-ed; at most this many


class _GiveUp(Exception):
    pass


def _ascii(chars: list[str]) -> list[str]:
    """The characters lowercased, or [] when one is not ASCII (its case folding may differ)."""
    if not all(char.isascii() for char in chars):
        return []
    return sorted({char.lower() for char in chars})


def required(pattern: str) -> Need | None:
    """Return what every match of `pattern` must contain (case-insensitively), or None."""
    if pattern.startswith("***"):
        return None
    try:
        parser = _Parser(pattern)
        need = parser.alternation()
        if parser.position != len(pattern):
            return None  # an unbalanced ')': Postgres refuses it anyway
    except _GiveUp:
        return None
    return need


def has_trigram(piece: str) -> bool:
    """Whether pg_trgm extracts at least one trigram from ``ILIKE '%piece%'``.

    A word (run of letters and digits) inside the piece gets two blanks of padding before it when
    a non-word character precedes it in the piece and one after it when one follows; the open
    ends (next to %) get none. A padded word of 3 or more characters gives a trigram.
    """
    for match in re.finditer(r"[A-Za-z0-9]+", piece):
        left = 2 if match.start() > 0 else 0
        right = 1 if match.end() < len(piece) else 0
        if len(match.group()) + left + right >= 3:
            return True
    return False


class _Parser:
    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.position = 0

    def peek(self) -> str:
        return self.pattern[self.position] if self.position < len(self.pattern) else ""

    def alternation(self) -> Need | None:
        branches = [self.sequence()]
        while self.peek() == "|":
            self.position += 1
            branches.append(self.sequence())
        if len(branches) == 1:
            return branches[0]
        if any(branch is None for branch in branches):
            return None  # one branch requires nothing
        return Need("or", parts=tuple(b for b in branches if b is not None))

    def sequence(self) -> Need | None:
        parts: list[Need] = []
        run: list[str] = [""]  # the piece being read, as its variants (a bracket multiplies them)

        def flush() -> None:
            variants = [piece for piece in run if piece]
            run[:] = [""]
            if variants and all(has_trigram(piece) for piece in variants):
                lexemes = tuple(Need("lexeme", piece) for piece in sorted(set(variants)))
                parts.append(lexemes[0] if len(lexemes) == 1 else Need("or", parts=lexemes))

        while self.position < len(self.pattern) and self.peek() not in "|)":
            chars, group = self.atom()
            low, quantified = self.quantifier()
            if chars and low > 0 and len(run) * len(chars) <= MAX_VARIANTS:
                run[:] = [piece + char for piece in run for char in chars]
                if quantified:
                    flush()  # repeated: what follows need not come right after one copy
                continue
            flush()
            if group is not None and low > 0:
                parts.append(group)
        flush()
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else Need("and", parts=tuple(parts))

    def atom(self) -> tuple[list[str], Need | None]:
        """Return (the characters one of which the atom is, lowercased; or the need of a group).

        Both are empty for anything else (a wildcard, an anchor, a class escape, a big bracket).
        """
        char = self.peek()
        self.position += 1
        if char == "\\":
            escaped = self.peek()
            if escaped == "":
                raise _GiveUp
            self.position += 1
            if escaped.isalnum():
                if escaped in _SAFE_ESCAPES:
                    return [], None
                raise _GiveUp  # \x41, \u..., back-references, \b (backspace in ARE), ...
            return _ascii([escaped]), None
        if char == "[":
            return self.bracket(), None
        if char == "(":
            return [], self.group()
        if char in ".^$":
            return [], None
        if char in "*+?{":
            raise _GiveUp  # a quantifier with nothing to repeat
        return _ascii([char]), None

    def bracket(self) -> list[str]:
        """Read a bracket expression (the '[' is consumed); return its characters when it is a small
        set of plain ones (``[789]``, ``[7-9]``, ``[-_.]``), else []."""
        start = self.position
        if self.peek() == "^":
            self.position += 1
        if self.peek() == "]":
            self.position += 1
        plain = True
        while True:
            char = self.peek()
            if char == "":
                raise _GiveUp
            self.position += 1
            if char == "]":
                break
            if char == "\\":
                self.position += 1
                plain = False
            elif char == "[" and self.peek() in (":", ".", "="):
                end = self.pattern.find(self.peek() + "]", self.position + 1)
                if end < 0:
                    raise _GiveUp
                self.position = end + 2
                plain = False
        body = self.pattern[start : self.position - 1]
        if not plain or not body or body[0] in "^]":
            return []
        chars: set[str] = set()
        for match in re.finditer(r"([A-Za-z0-9])-([A-Za-z0-9])|(.)", body):
            low, high, single = match.groups()
            if single is not None:
                chars.add(single)
            elif (low.isdigit(), low.islower()) == (high.isdigit(), high.islower()) and low <= high:
                chars.update(chr(code) for code in range(ord(low), ord(high) + 1))
            else:
                return []
        if len(chars) > MAX_VARIANTS:
            return []
        return _ascii(sorted(chars))

    def group(self) -> Need | None:
        """Parse a group (the '(' is consumed); look-arounds require nothing."""
        lookaround = False
        if self.peek() == "?":
            rest = self.pattern[self.position + 1 : self.position + 3]
            if rest.startswith(":"):
                self.position += 2
            elif rest[:1] in ("=", "!"):
                self.position += 2
                lookaround = True
            elif rest in ("<=", "<!"):
                self.position += 3
                lookaround = True
            else:
                raise _GiveUp  # embedded options and other forms
        need = self.alternation()
        if self.peek() != ")":
            raise _GiveUp
        self.position += 1
        return None if lookaround else need

    def quantifier(self) -> tuple[int, bool]:
        """Consume a quantifier if present; return (its minimum count, whether one was there)."""
        char = self.peek()
        if char in ("*", "?"):
            low = 0
            self.position += 1
        elif char == "+":
            low = 1
            self.position += 1
        elif char == "{":
            match = _BOUND.match(self.pattern, self.position)
            if match is None:
                raise _GiveUp
            low = int(match.group(1))
            self.position = match.end()
        else:
            return 1, False
        if self.peek() == "?":
            self.position += 1  # non-greedy
        if self.peek() in ("*", "+", "?", "{"):
            raise _GiveUp
        return low, True
