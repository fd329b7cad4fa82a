"""The binary COPY payload's rows are sorted by series id before the COPY (metrics_handler.sort_rows)."""

from __future__ import annotations

import random

from alerting_worker.ingest.metrics_handler import _COPY_HEADER, _COPY_TRAILER, _ROW, sort_rows


def payload(rows: list[tuple[int, int, float]]) -> bytes:
    return (
        _COPY_HEADER
        + b"".join(_ROW.pack(3, 8, sid, 8, ts, 8, value) for sid, ts, value in rows)
        + _COPY_TRAILER
    )


def unpack(data: bytes, count: int) -> list[tuple[int, int, float]]:
    assert data.startswith(_COPY_HEADER) and data.endswith(_COPY_TRAILER)
    assert len(data) == len(_COPY_HEADER) + count * _ROW.size + len(_COPY_TRAILER)
    out = []
    for i in range(count):
        fields = _ROW.unpack_from(data, len(_COPY_HEADER) + i * _ROW.size)
        assert (fields[0], fields[1], fields[3], fields[5]) == (3, 8, 8, 8)  # field count and lengths
        out.append(fields[2::2])
    return out


def test_rows_come_out_in_series_order_with_every_row_kept():
    rng = random.Random(7)
    rows = [(rng.randrange(-5, 2**62), rng.randrange(0, 2**50), rng.uniform(-1e9, 1e9)) for _ in range(2000)]
    rows += rows[:10]  # the same row twice stays twice
    result = unpack(sort_rows(payload(rows), len(rows)), len(rows))
    assert [sid for sid, _, _ in result] == sorted(sid for sid, _, _ in rows)
    assert sorted(result) == sorted(rows)


def test_zero_or_one_row_is_returned_as_is():
    one = payload([(5, 1, 2.0)])
    assert sort_rows(one, 1) is one
    empty = payload([])
    assert sort_rows(empty, 0) is empty
