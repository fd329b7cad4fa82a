"""Ingest redacts every stored record, whatever produced it (tailed files, third-party producers)."""

from __future__ import annotations

import json

import pytest

from tests.logs.conftest import fetch_all, record

PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"


def test_secrets_in_a_third_party_record_are_redacted_before_storage(store):
    raw = [
        record('login {"password":"hunter2","user":"ann"}', service="legacy", password_hint="x"),
        record(
            "GET https://cdn.test/f?X-Amz-Signature=abcd1234&sig=zz connect postgres://app:pw@db/x",
            attrs={"aws_secret_access_key": "wJalrXUtnFEMI", "nested": {"dsn": "postgres://a:b@c/d"}},
        ),
        record(f"key {PEM} ghp_{'a' * 36} AKIAIOSFODNN7EXAMPLE", session_id="s-1", status_code=404),
    ]
    assert store(raw) == 3
    rows = [
        (m, json.loads(a) if isinstance(a, str) else a)
        for m, a in fetch_all("SELECT message, attrs FROM logs_entry ORDER BY id")
    ]
    text = repr(rows)
    for secret in ("hunter2", "abcd1234", "=zz", ":pw@", "wJalr", "a:b@", "MIIEv", "ghp_", "AKIAIOSF", "s-1"):
        assert secret not in text, secret
    assert rows[0][0] == 'login {"password":"[REDACTED]","user":"ann"}'
    assert rows[2][1]["status_code"] == 404 and rows[1][1]["nested"]["dsn"] == "[REDACTED]"


@pytest.fixture
def search_rows(api, store):
    store([record("token=abc123 ok", service="tail")])
    return api.get("/api/v1/logs/search", {"service": "tail"}).json()["data"]


def test_log_search_returns_the_redacted_text(search_rows):
    assert [row["message"] for row in search_rows] == ["token=[REDACTED] ok"]
