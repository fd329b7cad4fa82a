"""COPY line building details that the handler tests do not reach."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from collector_server.logs.records import timestamp_text


@pytest.mark.parametrize(
    "ts",
    [
        0.0,
        1700000000.0,
        1700000000.5,
        1700000000.0000005,
        1700000000.0000015,
        1700000000.9999995,
        1763900000.123456,
    ],
)
def test_timestamp_text_rounds_like_datetime_at_the_edges(ts):
    assert datetime.fromisoformat(timestamp_text(ts)) == datetime.fromtimestamp(ts, UTC)


def test_timestamp_text_matches_datetime_for_many_recent_times():
    rng = random.Random(7)
    values = [1763900000 - rng.random() * 8 * 86400 for _ in range(20000)]
    assert [datetime.fromisoformat(timestamp_text(v)) for v in values] == [
        datetime.fromtimestamp(v, UTC) for v in values
    ]


def test_timestamp_text_is_utc_to_the_microsecond():
    assert timestamp_text(1700000000.25) == "2023-11-14T22:13:20.250000+00:00"
