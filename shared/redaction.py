"""Redact sensitive fields wherever data leaves an application.

What is replaced by ``REDACTED``:

- values of keys (at any depth of dicts, lists and tuples) whose name is sensitive: the seed
  documents' list (password, api_key, token, secret, authorization, credit_card, ssn,
  social_security, private_key), the usual variants (passwd, apikey, auth, credentials, bearer,
  cookie, set-cookie, ...) and any name ending in password/secret/token/apikey/privatekey/cookie/
  cookies/...; names are compared lower-cased with punctuation removed, so ``X-Api-Key`` matches
  ``api_key``; a name whose last word is ``ssn`` (``user_ssn``, ``userSSN``, ``patient-ssn``) too,
  by word so that ``address_n`` or ``class_n`` (ending in "ssn" once joined) are not;
- inside text: ``name=value`` / ``name: value`` pairs with a sensitive name (query strings,
  form bodies, exception messages such as ``password='hunter2' rejected``), ``Bearer``/``Basic``
  credentials, JSON Web Tokens, and card numbers: 13-19 digits that pass the Luhn check, printed
  in groups (4-4-4-4, Amex 4-6-5) or as one run starting with 2-6 like the integers below
  (random digit strings that fail the check, epoch timestamps and stream entry ids are kept);
- integers of 13-19 digits that start with 2-6 (the payment schemes: Mastercard 2/5, Amex and
  Diners 3, Visa 4, Discover/UnionPay 6) and pass the Luhn check (a card number stored as a number).
  The leading digit keeps epoch timestamps in ms/us/ns and snowflake ids (which start with 1
  for decades) from being taken for cards one time in ten;
- headers and query strings through ``redact_headers`` and ``redact_query``.

Additional names come from ``Redactor(extra_fields=...)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[REDACTED]"
TOO_DEEP = "[TOO DEEP]"
MAX_DEPTH = 32
TEXT_CACHE_CHARS = 200  # map values up to this long have their redacted text cached
TEXT_CACHE_SIZE = 4096

# The seed documents' list, then the usual variants.
SENSITIVE_FIELDS = frozenset(
    {
        "password",
        "api_key",
        "token",
        "secret",
        "authorization",
        "credit_card",
        "ssn",
        "social_security",
        "private_key",
        "passwd",
        "pwd",
        "apikey",
        "api-key",
        "x-api-key",
        "auth",
        "credentials",
        "bearer",
        "cookie",
        "set-cookie",
        "proxy-authorization",
        "access_token",
        "refresh_token",
        "id_token",
        "client_secret",
        "csrftoken",
        "card_number",
        "cvv",
        "cvc",
        "pin",
        "aws_secret_access_key",
        "secret_key",
        "passphrase",
        "dsn",
        "session_id",
        "sessionid",
        "session_key",
        "x-amz-signature",
        "x-amz-credential",
    }
)
_NORMALISE = re.compile(r"[^a-z0-9]")
_SENSITIVE_SUFFIXES = (
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "privatekey",
    "creditcard",
    "cardnumber",
    "credentials",
    "socialsecurity",
    "socialsecuritynumber",
    "cookie",
    "cookies",
    "passphrase",
    "secretkey",
    "secretaccesskey",
    "sessionid",
    "sessionkey",
    "signature",
)
# Sensitive as the last word of a name only (as a plain suffix "ssn" would also catch "address_n").
_SENSITIVE_LAST_WORDS = frozenset({"ssn", "dsn"})
# Names sensitive only as a URL query parameter (``?code=`` of OAuth, ``&sig=`` of a signed URL):
# as a log field ``code`` is far more often an HTTP or error code.
_QUERY_ONLY_NAMES = frozenset({"code", "sig", "signature", "xamzsignature", "xamzcredential"})
# The value after an Authorization-like name is a scheme and a credential ("Token abc"): both go.
_AUTH_NAMES = frozenset({"authorization", "proxyauthorization", "auth", "xauthorization"})
_AUTH_VALUE = re.compile(
    r"""[A-Za-z][A-Za-z0-9_-]*[ \t]+(?:\[REDACTED\]|[^\s"',;}\]])+(?:,[ \t]*[A-Za-z]+=[^\s"',;}\]]+)*"""
)
# user:password@ in a URL (postgres://app:pw@db, https://u:p@host/).
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@?#]*:)[^\s@/?#]+(?=@)")
_PEM_KEY = re.compile(
    r"-----BEGIN (?P<kind>[A-Z0-9 ]*PRIVATE KEY)-----.*?(?:-----END (?P=kind)-----|$)", re.DOTALL
)
# Credentials recognisable by their shape: GitHub, AWS access key ids, Slack, Stripe, GitLab, Google.
_TOKEN_SHAPES = re.compile(
    r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}|(?:AKIA|ASIA)[0-9A-Z]{16}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}|[sr]k_live_[A-Za-z0-9]{16,}|glpat-[A-Za-z0-9_-]{20,}"
    r"|AIza[0-9A-Za-z_-]{35})\b"
)
_PLAIN_ARGS = frozenset({str, int, float, bool, type(None)})
_PERCENT = re.compile(r"%%|%(?:\([^)]*\))?[#0\- +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?[diouxXeEfFgGcrsa]")
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z0-9_.-]*)[\s:=\"']*$")
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")
# A card number as an int: 13 to 19 digits.
_CARD_INT_MIN = 10**12
_CARD_INT_MAX = 10**19
_BEARER = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9\-._~+/]{6,}=*")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_DIGIT_RUN = re.compile(r"[\d -]{13,}")
# A card number is 13-19 digits written either in one run or in the printed groups (4-4-4-4...,
# Amex 4-6-5) with one separator kind. It must stand alone: a digit run inside a hex id, a UUID
# or a decimal (trace id "a1b2...", "6d0412345678901234c9") is not a card.
_CARD = re.compile(
    r"(?<![0-9A-Za-z_.])"
    r"(?:\d{13,19}|\d{4}(?P<sep>[ -])\d{4}(?P=sep)\d{4}(?P=sep)\d{1,7}|\d{4}(?P<amex>[ -])\d{6}(?P=amex)\d{5})"
    r"(?![0-9A-Za-z_]|\.\d)"
)
# name=value or name: value; the name may be quoted (JSON or repr inside a message). Only the
# name and separator are matched, so a non-sensitive pair never swallows the next name.
_PAIR_NAME = re.compile(r"""(?P<q>["']?)(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)(?P=q)\s*[=:]\s*""")
_PAIR_VALUE = re.compile(r""""[^"]*"|'[^']*'|(?:\[REDACTED\]|[^\s&;,"'}\]])+""")


def normalise(name: str) -> str:
    """Return a key name lower-cased with everything but letters and digits removed."""
    return _NORMALISE.sub("", name.lower())


_SENSITIVE_NORMALISED = frozenset(normalise(name) for name in SENSITIVE_FIELDS)


class Redactor:
    """Redact sensitive keys and values; extra key names may be added."""

    def __init__(self, extra_fields: Iterable[str] = ()) -> None:
        extra = {normalise(f) for f in extra_fields if normalise(f)}
        self.names = _SENSITIVE_NORMALISED | extra
        self._cache: dict[str, bool] = {}
        # Redacted text of short map values (a record's module, function, path...: the same few
        # strings over and over); cleared when full, so unique values cost a lookup and nothing more.
        self._texts: dict[str, str] = {}
        self._templates: dict[str, frozenset[int]] = {}

    def is_sensitive(self, key: str) -> bool:
        """Return whether values under this key name must be hidden."""
        cached = self._cache.get(key)
        if cached is None:
            norm = normalise(key)
            cached = (
                norm in self.names
                or norm.endswith(_SENSITIVE_SUFFIXES)
                or _last_word(key) in _SENSITIVE_LAST_WORDS
            )
            if len(self._cache) < 4096:
                self._cache[key] = cached
        return cached

    def redact(self, value: Any, _depth: int = 0) -> Any:
        """Return a redacted copy of a value (dicts, lists, tuples, strings, anything else)."""
        if value is None or isinstance(value, bool | float):
            return value
        if isinstance(value, int):
            if _CARD_INT_MIN <= value < _CARD_INT_MAX:
                digits = str(value)
                if "2" <= digits[0] <= "6" and luhn_ok(digits):
                    return REDACTED
            return value
        if isinstance(value, str):
            return self.redact_text(value)
        if _depth >= MAX_DEPTH:
            return TOO_DEEP
        if isinstance(value, Mapping):
            return self._redact_mapping(value, _depth)
        if isinstance(value, list | tuple | set | frozenset):
            return [self.redact(v, _depth + 1) for v in value]
        if isinstance(value, BaseException):
            return self.redact_text(f"{type(value).__name__}: {value}")
        # Anything else leaves the app as its text, so the text is what gets redacted.
        return self.redact_text(str(value))

    def _redact_mapping(self, value: Mapping[Any, Any], depth: int) -> dict[str, Any]:
        """Redact a map's values by key; plain scalars are handled inline (ingest runs this per record)."""
        out: dict[str, Any] = {}
        cache = self._cache
        texts = self._texts
        for key, item in value.items():
            if key.__class__ is not str:
                key = str(key)  # keys leave as text: msgpack and JSON consumers take string keys only
            else:
                sensitive = cache.get(key)
                if sensitive is None:
                    sensitive = self.is_sensitive(key)
                if sensitive:
                    out[key] = REDACTED
                    continue
            cls = item.__class__
            if cls is str:
                if len(item) < 6:
                    out[key] = item
                    continue
                redacted = texts.get(item)
                if redacted is None:
                    redacted = self.redact_text(item)
                    if len(item) <= TEXT_CACHE_CHARS:
                        if len(texts) >= TEXT_CACHE_SIZE:
                            texts.clear()
                        texts[item] = redacted
                out[key] = redacted
            elif cls is float or cls is bool or item is None or (cls is int and item < _CARD_INT_MIN):
                out[key] = item
            else:
                out[key] = self.redact(item, depth + 1)
        return out

    def redact_text(self, text: str) -> str:
        """Redact credentials, card numbers and sensitive name=value pairs inside free text."""
        if len(text) < 6:
            return text
        if "earer" in text or "asic" in text:
            text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
        if "eyJ" in text:
            text = _JWT.sub(REDACTED, text)
        if "PRIVATE KEY-----" in text:
            text = _PEM_KEY.sub(REDACTED, text)
        if "://" in text:
            text = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}{REDACTED}", text)
        if (
            "gh" in text
            or "xox" in text
            or "AKIA" in text
            or "ASIA" in text
            or "AIza" in text
            or "_live_" in text
            or "glpat-" in text
        ):
            text = _TOKEN_SHAPES.sub(REDACTED, text)
        if _DIGIT_RUN.search(text) is not None:  # a cheap scan first: most text has no card-like run
            text = _CARD.sub(_card_replacement, text)
        if "=" in text or ":" in text:
            text = self._redact_pairs(text)
        return text

    def redact_message(self, msg: Any, args: Any) -> str:
        """Return ``msg % args`` redacted, as logging formats a record's message.

        A positional argument right after a sensitive word (``"password %s"``, ``"token: %r"``)
        is replaced whole, and every argument is redacted by itself (dict keys, token shapes),
        before formatting; the result is redacted as text too.
        """
        text = str(msg)
        if args:
            try:
                text = text % self._redact_args(text, args)
            except (TypeError, ValueError, KeyError):
                text = str(msg) % args  # a bad format: let logging's own error path report it
        return self.redact_text(text)

    def _redact_args(self, msg: str, args: Any) -> Any:
        if args.__class__ is not tuple:
            if isinstance(args, Mapping):
                return self.redact(args)
            args = (args,)
        hidden = self._hidden_positions(msg)
        if not hidden and all(value.__class__ in _PLAIN_ARGS for value in args):
            return args  # plain values: their text is redacted once, in the message
        out = list(args)
        for index, value in enumerate(out):
            if index in hidden:
                out[index] = REDACTED
            elif value.__class__ not in _PLAIN_ARGS and isinstance(value, Mapping | list | tuple):
                out[index] = self.redact(value)  # by key
        return tuple(out)

    def _hidden_positions(self, msg: str) -> frozenset[int]:
        """Return the positions of the arguments that follow a sensitive word (cached per template)."""
        cached = self._templates.get(msg)
        if cached is None:
            positions = set()
            index = 0
            for match in _PERCENT.finditer(msg):
                if match.group(0) == "%%":
                    continue
                word = _WORD_BEFORE.search(msg, max(0, match.start() - 48), match.start())
                if word is not None and self.is_sensitive(word.group(1)):
                    positions.add(index)
                index += 1
            cached = frozenset(positions)
            if len(self._templates) < 4096:
                self._templates[msg] = cached
        return cached

    def redact_headers(self, headers: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> dict[str, Any]:
        """Return headers as a dict with sensitive ones (Authorization, Cookie, ...) hidden."""
        items = headers.items() if isinstance(headers, Mapping) else headers
        out: dict[str, Any] = {}
        for name, value in items:
            name = name.decode("latin-1") if isinstance(name, bytes) else str(name)
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            out[name] = REDACTED if self.is_sensitive(name) else self.redact(value)
        return out

    def redact_query(self, query: str) -> str:
        """Redact the values of sensitive parameters in a query string or URL."""
        if not query:
            return query
        # Read as the part after "?", so a first parameter sensitive only in a query (code=) is found.
        return self.redact_text("?" + query)[1:]

    def _redact_pairs(self, text: str) -> str:
        parts: list[str] = []
        pos = 0
        for match in _PAIR_NAME.finditer(text):
            if match.start() < pos:
                continue
            name = match.group("name")
            if not self.is_sensitive(name) and not _query_parameter(text, match, name):
                continue
            value = None
            if not match.group("q") and normalise(name) in _AUTH_NAMES:
                value = _AUTH_VALUE.match(text, match.end())
            value = value or _PAIR_VALUE.match(text, match.end())
            if value is None:
                continue
            quote = value.group(0)[0] if value.group(0)[:1] in {'"', "'"} else ""
            parts.append(text[pos : match.end()])
            parts.append(f"{quote}{REDACTED}{quote}")
            pos = value.end()
        if not parts:
            return text
        parts.append(text[pos:])
        return "".join(parts)


def _query_parameter(text: str, match: re.Match[str], name: str) -> bool:
    """Return whether a name=value pair is a query parameter sensitive only there (``&sig=``)."""
    start = match.start()
    return (
        start > 0
        and text[start - 1] in "?&"
        and text[match.end() - 1] == "="
        and normalise(name) in _QUERY_ONLY_NAMES
    )


def _last_word(key: str) -> str:
    words = [w for w in _WORD_SPLIT.split(key) if w]
    return words[-1].lower() if words else ""


def _card_replacement(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = re.sub(r"\D", "", text)
    if not (13 <= len(digits) <= 19 and luhn_ok(digits)):
        return text
    # One unbroken run must also start like a payment card (2-6), as for integers: epoch
    # timestamps in ms/us/ns, Redis stream entry ids ("1796149782593-0") and snowflake ids start
    # with 1 and pass Luhn one time in ten. A number printed in groups (4-4-4-4) is a card.
    if digits == text and not "2" <= digits[0] <= "6":
        return text
    return REDACTED


def luhn_ok(digits: str) -> bool:
    """Return whether a string of digits passes the Luhn checksum used by card numbers."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        number = int(char)
        if index % 2 == 1:
            number *= 2
            if number > 9:
                number -= 9
        total += number
    return total % 10 == 0


_default = Redactor()


def redact(value: Any) -> Any:
    """Redact with the default sensitive names."""
    return _default.redact(value)


def redact_record(message: str, attrs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Redact one stored log record's message and attributes (server-side ingest, any producer)."""
    return _default.redact_text(message), (_default.redact(attrs) if attrs else attrs)


def default_redactor() -> Redactor:
    """Return the shared Redactor with the default names."""
    return _default
