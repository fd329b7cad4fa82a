"""The PromQL HTTP API answers in Prometheus' shapes, over samples in Postgres."""

from __future__ import annotations

import pytest


@pytest.fixture
def cpu(store, now_s):
    """Two hosts' gauges and a counter with a reset, a sample every 15 s for 20 minutes."""
    for host, base in (("web-1", 10.0), ("web-2", 20.0)):
        gauge = store.series("cpu_percent", host=host, env="prod")
        store.samples(gauge, [(now_s - 1200 + 15 * i + 7, base + i % 4) for i in range(80)])
    counter = store.series("requests_total", "counter", host="web-1", code="200")
    values = [10.0 * i for i in range(40)] + [5.0 * i for i in range(40)]
    store.samples(counter, [(now_s - 1200 + 15 * i + 7, v) for i, v in enumerate(values)])
    return now_s


def query(api, text, at):
    response = api.get("/prometheus/api/v1/query", {"query": text, "time": at})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "success"
    return body["data"]


def test_instant_selector_returns_the_latest_sample_of_each_series(api, cpu):
    data = query(api, 'cpu_percent{env="prod"}', cpu)
    assert data["resultType"] == "vector"
    assert [(r["metric"]["host"], r["value"]) for r in data["result"]] == [
        ("web-1", [cpu, "13"]),
        ("web-2", [cpu, "23"]),
    ]
    assert data["result"][0]["metric"]["__name__"] == "cpu_percent"


def test_sum_by_and_rate(api, cpu):
    data = query(api, "sum by (env) (cpu_percent)", cpu)
    assert data["result"] == [{"metric": {"env": "prod"}, "value": [cpu, "36"]}]
    data = query(api, "rate(requests_total[5m])", cpu)
    assert len(data["result"]) == 1
    assert "__name__" not in data["result"][0]["metric"]
    assert float(data["result"][0]["value"][1]) == pytest.approx(5.0 / 15, rel=0.01)


def test_range_query_returns_a_matrix_with_a_point_per_step(api, cpu):
    response = api.post(
        "/prometheus/api/v1/query_range",
        {"query": "cpu_percent * 2", "start": cpu - 300, "end": cpu, "step": "30s"},
    )
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["resultType"] == "matrix"
    assert len(data["result"]) == 2
    assert len(data["result"][0]["values"]) == 11


def test_unsupported_function_is_bad_data_naming_it(api, cpu):
    response = api.get("/prometheus/api/v1/query", {"query": "holt_winters(cpu_percent[5m], 0.5, 0.5)"})
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == "error"
    assert body["errorType"] == "bad_data"
    assert "holt_winters" in body["error"]


def test_minute_steps_over_hours_read_the_rollups(api, store, now_s):
    from datetime import UTC, datetime

    from django.db import connection

    from collector_server.monitoring.models import RollupState

    counter = store.series("jobs_done_total", "counter", host="batch-1")
    start = now_s - 8 * 3600
    rows = []
    for m in range(8 * 60):
        bucket = datetime.fromtimestamp(start + 60 * m, UTC)
        last = 30.0 * (m + 1)
        rows.append((counter.id, bucket, last - 30, last, 4 * last, 4, last, 30.0))
    with connection.cursor() as cursor:
        cursor.executemany("INSERT INTO monitoring_rollup_1m VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", rows)
    RollupState.objects.create(level="1m", done_until=datetime.fromtimestamp(now_s, UTC))
    # No raw sample exists at all: every value below comes from the rollups.
    params = {"start": start + 3600, "end": now_s - 60, "step": 60}
    response = api.get("/prometheus/api/v1/query_range", {"query": "rate(jobs_done_total[5m])", **params})
    assert response.status_code == 200, response.content
    (series,) = response.json()["data"]["result"]
    assert {v for _, v in series["values"]} == {"0.5"}
    assert len(series["values"]) == 7 * 60 - 1 + 1
    response = api.get(
        "/prometheus/api/v1/query_range", {"query": "max_over_time(jobs_done_total[2m])", **params}
    )
    first = response.json()["data"]["result"][0]["values"][0]
    assert first == [start + 3600, "1800"]


@pytest.mark.parametrize(
    "query",
    [
        "sum by (host) (rate(jobs_done_total[5m]))",
        "avg without (code) (increase(jobs_done_total[10m]))",
        "max(max_over_time(jobs_done_total[3m] offset 2m))",
        "count(count_over_time(jobs_done_total[5m]))",
        "last_over_time(jobs_done_total[2m])",
    ],
)
def test_the_postgres_only_path_answers_like_the_general_one(api, store, now_s, query, monkeypatch):
    """`* 1` sends the same query through the general evaluator; the answers must be equal."""
    from datetime import UTC, datetime

    from collector_server.prometheus_api.promql import fastpath

    answered = []
    original = fastpath.matrix_json

    def recording(*args):
        result = original(*args)
        answered.append(result is not None)
        return result

    monkeypatch.setattr(fastpath, "matrix_json", recording)

    from django.db import connection

    from collector_server.monitoring.models import RollupState

    start = now_s - 3 * 3600
    rows = []
    for h, host in enumerate(("batch-1", "batch-2", "batch-3")):
        for code in ("200", "500"):
            counter = store.series("jobs_done_total", "counter", host=host, code=code)
            for m in range(3 * 60):
                if (m + h) % 17 == 0:
                    continue  # a gap now and then
                bucket = datetime.fromtimestamp(start + 60 * m, UTC)
                inc = float((m * (h + 1)) % 7 + len(code))
                rows.append((counter.id, bucket, 0.0, 10.0 * m, 5.0 * m, 4, 10.0 * m + h, inc))
    with connection.cursor() as cursor:
        cursor.executemany("INSERT INTO monitoring_rollup_1m VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", rows)
    RollupState.objects.create(level="1m", done_until=datetime.fromtimestamp(now_s, UTC))
    params = {"start": start + 1800, "end": now_s - 120, "step": 120}
    fast = api.get("/prometheus/api/v1/query_range", {"query": query, **params})
    general = api.get("/prometheus/api/v1/query_range", {"query": f"({query}) * 1", **params})
    assert fast.status_code == general.status_code == 200
    assert answered == [True, False]
    fast_result = {tuple(sorted(r["metric"].items())): r["values"] for r in fast.json()["data"]["result"]}
    general_result = {
        tuple(sorted((k, v) for k, v in r["metric"].items() if k != "__name__")): r["values"]
        for r in general.json()["data"]["result"]
    }
    if query.startswith("last_over_time"):
        fast_result = {tuple(kv for kv in k if kv[0] != "__name__"): v for k, v in fast_result.items()}
    assert fast_result and fast_result.keys() == general_result.keys()
    for key, values in general_result.items():
        assert [t for t, _ in fast_result[key]] == [t for t, _ in values]
        assert [float(v) for _, v in fast_result[key]] == pytest.approx([float(v) for _, v in values])


FAST_QUERIES = [
    "sum by (host) (rate(jobs_total[5m]))",
    "rate(jobs_total[10m])",
    "max by (code) (increase(jobs_total[5m] offset 5m))",
    "count(delta(jobs_total[5m]))",
    "avg(avg_over_time(jobs_total[5m]))",
    "min(min_over_time(jobs_total[10m]))",
    "max(max_over_time(jobs_total[5m]))",
    "sum(sum_over_time(jobs_total[5m]))",
    "count_over_time(jobs_total[5m])",
    "last_over_time(jobs_total[5m])",
    "present_over_time(jobs_total[5m])",
]


@pytest.mark.parametrize("step", [60, 300, 600])
def test_numpy_sql_and_general_paths_agree_over_rollups_with_edges(
    api, store, now_s, redis_client, step, monkeypatch, settings
):
    """The numpy fast path, the SQL fast path and the general evaluator give the same answers.

    Counters with resets, a series with a gap and one that starts within the range, rolled up
    by the real job (1 and 5 minutes, edges included), raw samples then deleted. Steps of 5 and
    10 minutes from a whole 5 minutes read the 5-minute rollups.
    """
    from datetime import UTC, datetime

    from django.db import connection

    from alerting_worker.maintenance import rollups
    from collector_server.prometheus_api.promql import vectorised

    settings.PROMQL_RESULTS_CACHE = False  # every answer computed (the cache: test_results_cache.py)
    start = now_s - 2 * 3600
    for h, host in enumerate(("batch-1", "batch-2")):
        for code in ("200", "500"):
            counter = store.series("jobs_total", "counter", host=host, code=code)
            points, value = [], 0.0
            for i in range(2 * 240):
                if h == 1 and code == "500" and 200 <= i < 230:
                    continue  # an agent down for 7.5 minutes
                if h == 0 and code == "500" and i < 150:
                    continue  # a series that starts within the range
                value = 0.0 if i % 170 == 168 else value + 1 + (i * (h + 1)) % 5 + len(code)
                points.append((start + 15 * i + 7 * h, value))
            store.samples(counter, points)
    rollups.run_rollups(now=datetime.fromtimestamp(now_s, UTC))
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM monitoring_rollup_5m WHERE first_ts IS NOT NULL")
        assert cursor.fetchone()[0] >= 4 * 20
        cursor.execute("TRUNCATE monitoring_sample")
    answered = []
    original = vectorised.matrix_arrays

    def recording(*args):
        result = original(*args)
        answered.append(result is not None)
        return result

    monkeypatch.setattr(vectorised, "matrix_arrays", recording)
    first = (start + 1200) // 600 * 600
    params = {"start": first, "end": now_s - 600, "step": step}

    def answer(text: str) -> dict:
        response = api.get("/prometheus/api/v1/query_range", {"query": text, **params})
        assert response.status_code == 200, response.content
        return {
            tuple(sorted((k, v) for k, v in r["metric"].items() if k != "__name__")): [
                (float(t), float(v)) for t, v in r["values"]
            ]
            for r in response.json()["data"]["result"]
        }

    for text in FAST_QUERIES:
        answered.clear()
        numpy_answer = answer(text)
        assert answered == [True], text
        with monkeypatch.context() as patched:
            patched.setattr(vectorised, "matrix_arrays", lambda *args: None)
            sql_answer = answer(text)
        general = answer(f"({text}) * 1")
        assert numpy_answer, text
        for other in (sql_answer, general):
            assert numpy_answer.keys() == other.keys(), text
            for key, values in other.items():
                assert [t for t, _ in numpy_answer[key]] == [t for t, _ in values], (text, key)
                assert [v for _, v in numpy_answer[key]] == pytest.approx([v for _, v in values]), (text, key)
