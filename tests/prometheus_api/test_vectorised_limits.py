"""The numpy path's limits (the SQL path answers beyond them), its timestamps, its binary reads."""

from __future__ import annotations

import numpy as np
import pytest

QUERY = "sum by (host) (rate(jobs_total[5m]))"


def _seed(store, start: int, minutes: int) -> None:
    for h, host in enumerate(("batch-1", "batch-2")):
        series = store.series("jobs_total", "counter", host=host)
        value, points = 0.0, []
        for i in range(minutes * 4):
            value += 1 + (i * (h + 1)) % 5
            points.append((start + 15 * i + 3.0007, value))  # sub-millisecond sample times
        store.samples(series, points)


def _answer(client, params: dict) -> list:
    response = client.get("/prometheus/api/v1/query_range", {"query": QUERY, **params})
    assert response.status_code == 200, response.content
    return response.json()["data"]["result"]


# The query below: 2 series x 186 one-minute buckets, 72-byte records (26,784 bytes).
@pytest.mark.parametrize("limit,value", [("MAX_GRID_CELLS", 300), ("MAX_RECORD_BYTES", 20_000)])
def test_a_grid_or_records_over_the_limit_fall_back_to_the_sql_path(
    api, store, now_s, monkeypatch, limit, value
):
    from datetime import UTC, datetime

    from alerting_worker.maintenance import rollups
    from collector_server.prometheus_api.promql import vectorised

    _seed(store, now_s - 4 * 3600, 4 * 60)
    rollups.run_rollups(now=datetime.fromtimestamp(now_s, UTC))
    outcomes: list[bool] = []
    original = vectorised.window_values

    def recording(*args, **kwargs):
        result = original(*args, **kwargs)
        outcomes.append(result is not None)
        return result

    monkeypatch.setattr(vectorised, "window_values", recording)
    params = {"start": now_s - 3 * 3600, "end": now_s, "step": 120}
    numpy_answer = _answer(api, params)
    assert outcomes == [True] and len(numpy_answer) == 2
    monkeypatch.setattr(vectorised, limit, value)
    outcomes.clear()
    assert _answer(api, params) == numpy_answer  # the SQL path, sub-ms times rounded the same way
    assert outcomes == [False]


def test_timestamps_round_to_the_nearest_millisecond_as_in_sql():
    from collector_server.prometheus_api.promql.vectorised import _rounded_ms

    micros = np.array([1_499, 1_500, 1_501, 2_999, -1_499, -1_500, -1_501, 0], dtype=np.int64)
    assert _rounded_ms(micros).tolist() == [1, 2, 2, 3, -1, -2, -2, 0]


def test_fetch_bytes_never_prepares_and_raises_django_errors(db):
    from django.db import DataError, connection

    from collector_server.prometheus_api.promql import storage

    for i in range(8):  # psycopg prepares a statement run 5 times on the same connection
        assert storage.fetch_bytes("SELECT int8send(%(i)s::int8)", {"i": i}) == [i.to_bytes(8, "big")]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        assert cursor.fetchone()[0] == 0
    with pytest.raises(DataError):
        storage.fetch_bytes("SELECT int8send(1 / %(zero)s::int8)", {"zero": 0})
