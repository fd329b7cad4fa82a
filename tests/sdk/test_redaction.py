"""Redaction of keys, nested structures, headers, query strings and values inside text."""

from __future__ import annotations

import pytest

from shared.redaction import REDACTED, SENSITIVE_FIELDS, Redactor, luhn_ok, redact

SEED_NAMES = [
    "password",
    "api_key",
    "token",
    "secret",
    "authorization",
    "credit_card",
    "ssn",
    "social_security",
    "private_key",
]
VARIANTS = [
    "passwd",
    "apikey",
    "auth",
    "credentials",
    "bearer",
    "cookie",
    "set-cookie",
    "Set-Cookie",
    "X-Api-Key",
    "API-KEY",
    "userPassword",
    "db_password",
    "client_secret",
    "access_token",
    "refresh-token",
    "privateKey",
    "creditCard",
    "card_number",
    "Authorization",
    "PASSWORD",
    "user_ssn",
    "userSSN",
    "patient-ssn",
    "session_cookie",
    "sessionCookie",
    "request_cookies",
]
# Luhn-valid test numbers of the major schemes.
CARDS = [
    "4111111111111111",
    "5500 0000 0000 0004",
    "3400-000000-00009",
    "6011000000000004",
    "4012888888881881",
]


def test_seed_names_are_all_in_the_default_list():
    assert set(SEED_NAMES) <= SENSITIVE_FIELDS


@pytest.mark.parametrize("name", SEED_NAMES + VARIANTS)
def test_sensitive_key_value_is_replaced(name):
    assert redact({name: "value-123", "keep": "visible"}) == {name: REDACTED, "keep": "visible"}


@pytest.mark.parametrize(
    "name",
    [
        "author",
        "token_count_label",
        "authority",
        "user",
        "path",
        "pinned",
        "tokens",
        "address_n",
        "classN",
        "process_n",
        "lesson",
        "cookie_consent",
        "ssn_last_checked_at",
    ],
)
def test_ordinary_keys_that_resemble_sensitive_names_are_kept(name):
    assert redact({name: "kept"}) == {name: "kept"}


def test_nested_dicts_and_lists_are_redacted_at_every_depth():
    data = {
        "user": {"name": "ann", "credentials": {"user": "ann", "pw": "x"}},
        "items": [{"token": "t1"}, {"id": 1, "meta": [{"api_key": "k"}, ("secret", "tuple-kept-as-list")]}],
        "deep": {"a": {"b": {"c": {"password": "p"}}}},
    }
    out = redact(data)
    assert out["user"] == {"name": "ann", "credentials": REDACTED}
    assert out["items"][0] == {"token": REDACTED}
    assert out["items"][1]["meta"][0] == {"api_key": REDACTED}
    assert out["items"][1]["meta"][1] == ["secret", "tuple-kept-as-list"]
    assert out["deep"]["a"]["b"]["c"]["password"] == REDACTED
    assert data["deep"]["a"]["b"]["c"]["password"] == "p"  # the input is not modified


def test_self_referencing_structure_stops_at_the_depth_limit():
    loop: dict = {"name": "x"}
    loop["self"] = loop
    out = redact(loop)
    depth = 0
    while isinstance(out, dict):
        out = out["self"]
        depth += 1
    assert out == "[TOO DEEP]"
    assert depth == 32


def test_headers_are_redacted_by_name_and_bytes_are_decoded():
    headers = [
        (b"Authorization", b"Bearer abc.def.ghi"),
        ("Cookie", "sessionid=abc; csrftoken=def"),
        ("X-Api-Key", "k"),
        ("Accept", "text/html"),
        ("Referer", "https://x.test/cb?code=1&access_token=zzz123"),
    ]
    out = Redactor().redact_headers(headers)
    assert out == {
        "Authorization": REDACTED,
        "Cookie": REDACTED,
        "X-Api-Key": REDACTED,
        "Accept": "text/html",
        "Referer": f"https://x.test/cb?code={REDACTED}&access_token={REDACTED}",
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("a=1&password=hunter2&b=2", f"a=1&password={REDACTED}&b=2"),
        ("api_key=abc", f"api_key={REDACTED}"),
        ("/login?user=bob&token=t0k3n", f"/login?user=bob&token={REDACTED}"),
        ("q=password&page=2", "q=password&page=2"),
        ("Secret=x;auth=y", f"Secret={REDACTED};auth={REDACTED}"),
        ("", ""),
    ],
)
def test_query_string_parameters_with_sensitive_names_are_redacted(query, expected):
    assert Redactor().redact_query(query) == expected


def test_bearer_and_basic_credentials_in_text_are_redacted():
    text = "calling upstream with Bearer eyJhbGciOi.abc-def_ghi and basic dXNlcjpwYXNz=="
    out = redact(text)
    assert out == f"calling upstream with Bearer {REDACTED} and basic {REDACTED}"


def test_jwt_anywhere_in_text_is_redacted():
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl"
    assert redact(f"got {jwt} from client") == f"got {REDACTED} from client"


@pytest.mark.parametrize("card", CARDS)
def test_luhn_valid_card_numbers_are_redacted(card):
    assert luhn_ok(card.replace(" ", "").replace("-", ""))
    assert redact(f"charged card {card} ok") == f"charged card {REDACTED} ok"


@pytest.mark.parametrize(
    "digits", ["4111111111111112", "1234567890123", "20240115103045123", "98765432109876"]
)
def test_random_digit_strings_that_fail_luhn_are_kept(digits):
    assert not luhn_ok(digits)
    assert redact(f"order {digits} shipped") == f"order {digits} shipped"


def test_short_numbers_and_decimals_are_kept():
    assert redact("took 1234.5678901234567 ms for 42 items") == "took 1234.5678901234567 ms for 42 items"


def test_exception_messages_containing_secrets_are_redacted():
    try:
        raise ConnectionError("auth failed: password='hunter2' api_key=AKIA123 card 4111 1111 1111 1111")
    except ConnectionError as exc:
        out = redact({"error": exc})
    assert out["error"] == (
        f"ConnectionError: auth failed: password='{REDACTED}' api_key={REDACTED} card {REDACTED}"
    )


def test_json_text_with_sensitive_keys_is_redacted():
    text = '{"user": "bob", "password": "hunter2", "nested": {"token": "abc"}}'
    assert redact(text) == f'{{"user": "bob", "password": "{REDACTED}", "nested": {{"token": "{REDACTED}"}}}}'


def test_configurable_additional_names_are_redacted_by_key_and_in_text():
    redactor = Redactor(extra_fields=["employee_id", "X-Tenant-Secret-Header"])
    assert redactor.redact({"Employee-ID": "E42", "name": "ann"}) == {"Employee-ID": REDACTED, "name": "ann"}
    assert redactor.redact("lookup employee_id=E42 done") == f"lookup employee_id={REDACTED} done"
    assert redactor.is_sensitive("x_tenant_secret_header")
    assert redact({"employee_id": "E42"}) == {"employee_id": "E42"}  # the default redactor is unchanged


def test_non_string_values_keep_their_type_and_objects_become_redacted_text():
    class Conn:
        def __str__(self) -> str:
            return "postgres://u@h/db?password=pw1"

    out = redact({"n": 3, "f": 1.5, "b": True, "none": None, "conn": Conn(), "set": {"a"}})
    assert out == {
        "n": 3,
        "f": 1.5,
        "b": True,
        "none": None,
        "conn": f"postgres://u@h/db?password={REDACTED}",
        "set": ["a"],
    }


def test_redacting_twice_gives_the_same_result():
    text = "GET /a?password=hunter2&x=1 Authorization: Bearer abcdefgh card 4111111111111111"
    once = redact(text)
    assert redact(once) == once
    assert "hunter2" not in once and "abcdefgh" not in once


@pytest.mark.parametrize(
    "text",
    [
        # Hex ids with a Luhn-valid run of digits inside (the run 4111111111111111 is a test card).
        "trace 6d4111111111111111c9a0b1c2d3e4f5a6 done",
        "span=4111111111111111ab",
        # A UUID whose leading groups are digits is not a grouped card number.
        "job 41111111-1111-1111-1111-111111111111 queued",
    ],
)
def test_digit_runs_inside_identifiers_are_not_cards(text):
    assert redact(text) == text


def test_ids_in_the_log_context_are_never_redacted():
    import logging

    from shared.jsonlog import record_fields

    record = logging.LogRecord("app", logging.INFO, __file__, 1, "card 4111111111111111", None, None)
    ids = {
        "request_id": "4111111111111111",
        "trace_id": "4111111111111111" * 2,
        "span_id": "4111111111111111",
    }
    fields = record_fields(record, context={**ids, "note": "4111111111111111"})
    assert {key: fields[key] for key in ids} == ids
    assert fields["note"] == REDACTED and fields["message"] == f"card {REDACTED}"


@pytest.mark.parametrize("card", [c.replace(" ", "").replace("-", "") for c in CARDS] + ["2223000048400011"])
def test_luhn_valid_card_numbers_stored_as_ints_are_redacted(card):
    assert redact({"card": int(card), "n": 3}) == {"card": REDACTED, "n": 3}
    assert redact([int(card)]) == [REDACTED]
    assert redact(int(card)) == REDACTED


@pytest.mark.parametrize(
    "value",
    [
        4111111111111112,  # fails Luhn
        411111111111,  # 12 digits
        1705314645121,  # epoch milliseconds, Luhn-valid, but no card starts with 1
        1705314645123456788,  # epoch nanoseconds, Luhn-valid too
        10000000000000000000,  # 20 digits
        -4111111111111111,
    ],
)
def test_other_ints_are_kept(value):
    assert redact({"n": value}) == {"n": value}


def test_the_epoch_guard_above_is_luhn_valid():
    assert luhn_ok("1705314645121") and luhn_ok("1705314645123456788")  # so only the leading digit keeps it


# The leaks listed in issue 10, each through the SDK's JSONFormatter as an application logs it.
PEM_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----"


def formatted(*args, **kwargs) -> dict:
    import json
    import logging

    from agent.sdk import JSONFormatter

    exc_info = kwargs.pop("exc_info", None)
    record = logging.LogRecord("app", logging.INFO, __file__, 1, args[0], args[1:] or None, exc_info)
    for key, value in kwargs.items():
        setattr(record, key, value)
    return json.loads(JSONFormatter().format(record))


@pytest.mark.parametrize(
    ("message", "secret"),
    [
        ("Authorization: Token 0123456789abcdef", "0123456789abcdef"),
        ("authorization=Token abcdef123 next", "abcdef123"),
        ("db at postgres://app:pw-in-url@db:5432/app", "pw-in-url"),
        ("fetch https://u:p4ss@host.test/x", "p4ss"),
        ("callback /oauth?state=1&code=one-time-code", "one-time-code"),
        ("GET /dl?sig=sigvalue123&se=2026", "sigvalue123"),
        ("https://b.s3.test/k?X-Amz-Credential=AKIA&X-Amz-Signature=deadbeef01", "deadbeef01"),
        (f"loaded {PEM_KEY}", "MIIEpAIBAAKCAQEA7"),
        ("gh token ghp_" + "A1b2C3d4" * 5, "A1b2C3d4"),
        ("aws key AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE"),
        ("slack xoxb-1234567890-abcdefghij", "abcdefghij"),
    ],
)
def test_issue_leaks_in_message_text_are_redacted(message, secret):
    out = formatted(message)["message"]
    assert secret not in out and REDACTED in out


@pytest.mark.parametrize("name", ["aws_secret_access_key", "passphrase", "dsn", "sentry_dsn", "session_id"])
def test_issue_key_names_are_redacted(name):
    assert formatted("x", **{name: "hidden-value"})[name] == REDACTED


def test_secrets_in_positional_arguments_are_redacted():
    entry = formatted("user %s logged in with password %s and %r", "ann", "hunter2", {"token": "t0k"})
    assert entry["message"] == f"user ann logged in with password {REDACTED} and {{'token': '{REDACTED}'}}"


def test_secrets_in_exception_text_are_redacted():
    password, token = "exc" + "-pw", "ghp_" + "x" * 36  # built, so the traceback's source line holds neither
    try:
        raise ConnectionError(f"could not connect to postgres://app:{password}@db/app with {token}")
    except ConnectionError:
        import sys

        entry = formatted("failed", exc_info=sys.exc_info())
    assert "exc-pw" not in entry["exception"] and "ghp_x" not in entry["exception"]
    assert "ConnectionError: could not connect to postgres://app:[REDACTED]@db/app" in entry["exception"]


@pytest.mark.parametrize(
    "text",
    ["status code: 404", "error code=E42 in parser", "the token expired", "see https://example.test/docs"],
)
def test_look_alikes_of_the_new_rules_are_kept(text):
    assert redact(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "dead-lettered entry b'1705314645121-0' of fleetwatch:stream:metrics",  # a stream entry id
        "batch epoch 1705314645121 seq 7",  # epoch milliseconds
        "trace at 1705314645123456788 ns",  # epoch nanoseconds
    ],
)
def test_luhn_valid_timestamps_and_stream_ids_in_text_are_kept(text):
    assert redact(text) == text


def test_a_card_printed_in_groups_is_redacted_whatever_its_first_digit():
    assert luhn_ok("1705314645121")
    assert redact("card 1705 3146 4512 1 used") == f"card {REDACTED} used"
    assert redact("paid with 4111 1111 1111 1111") == f"paid with {REDACTED}"
