"""The models API, its charts and the daily cost over stored series: price history, quantiles, scoping, params."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from collector_server.inference.figures import histogram_quantile
from collector_server.inference.models import ModelPrice
from shared import inference as c
from tests.inference.conftest import client_for

MODELS = "/api/v1/monitoring/models"
SERIES = "/api/v1/monitoring/models/series"
DAILY = "/api/v1/monitoring/models/daily-cost"


def span(start, end):
    return {"start": str(int(start.timestamp())), "end": str(int(end.timestamp()))}


@pytest.fixture
def priced(metrics, now):
    """Model m: 1 USD / 1k input tokens, 2 USD from t0+30 min; 1000 tokens before the change, 2000 after."""
    t0 = now - timedelta(hours=3)
    ModelPrice.objects.create(
        model="m", input_per_1k=Decimal(1), output_per_1k=Decimal(0), valid_from=t0 - timedelta(days=1)
    )
    ModelPrice.objects.create(
        model="m", input_per_1k=Decimal(2), output_per_1k=Decimal(0), valid_from=t0 + timedelta(minutes=30)
    )
    labels = {"model": "m", "organization": "acme", "host": "gpu-1"}
    points = [(t0, 0.0), (t0 + timedelta(minutes=10), 1000.0), (t0 + timedelta(minutes=40), 3000.0)]
    metrics.add(c.UNPRICED_INPUT_TOKENS, points, kind="counter", **labels)
    metrics.add(c.INPUT_TOKENS, points, kind="counter", **labels)
    metrics.add(
        c.REQUESTS,
        [(t0, 0.0), (t0 + timedelta(minutes=10), 1.0), (t0 + timedelta(minutes=40), 3.0)],
        kind="counter",
        status="ok",
        **labels,
    )
    metrics.add("gpu_utilization_percent", [(now - timedelta(seconds=30), 70.0)], gpu="0", host="gpu-1")
    metrics.add("gpu_utilization_percent", [(now - timedelta(seconds=30), 90.0)], gpu="1", host="gpu-1")
    metrics.add(c.KV_CACHE, [(now - timedelta(seconds=20), 0.5)], model="m", host="gpu-1")
    metrics.add(c.KV_CACHE, [(now - timedelta(seconds=20), 0.8)], model="m", host="gpu-2")
    metrics.add(c.RUNNING, [(now - timedelta(seconds=20), 3.0)], model="m", host="gpu-1")
    metrics.add(c.RUNNING, [(now - timedelta(seconds=20), 4.0)], model="m", host="gpu-2")
    return t0


@pytest.mark.parametrize("hours", [1, 6])  # raw samples; 1-minute buckets
def test_cost_follows_the_price_in_force_when_the_tokens_were_used(db, priced, now, hours):
    viewer = client_for("v", "viewer")
    start = priced
    body = viewer.get(MODELS, span(start, start + timedelta(hours=hours))).json()
    row = body["models"][0]
    assert row["cost_usd"] == pytest.approx(1000 / 1000 * 1 + 2000 / 1000 * 2)
    assert (row["requests"], row["input_tokens"]) == (3, 3000)
    assert row["input_tokens_per_second"] == pytest.approx(3000 / (hours * 3600))
    chart = viewer.get(
        SERIES, {"figure": "cost", "points": 60, **span(start, start + timedelta(hours=hours))}
    ).json()
    assert sum(v or 0 for v in chart["series"][0]["values"]) == pytest.approx(5.0)
    assert len(chart["timestamps"]) <= 60 and chart["series"][0]["labels"] == {"model": "m"}


def test_server_gauges_and_serving_hosts_with_gpu_utilisation(db, priced, now):
    viewer = client_for("v", "viewer")
    row = viewer.get(MODELS, span(now - timedelta(hours=4), now)).json()["models"][0]
    assert row["server"]["kv_cache_usage_ratio"] == 0.8  # the fullest host
    assert row["server"]["requests_running"] == 7.0  # summed over hosts
    assert {h["host"]: h["gpu_utilization_percent"] for h in row["hosts"]} == {"gpu-1": 80.0, "gpu-2": None}


def test_daily_cost_per_day_model_and_organisation(db, priced, now):
    viewer = client_for("v", "viewer")
    days = viewer.get(DAILY, {"days": 2}).json()["days"]
    mine = [d for d in days if d["model"] == "m"]
    assert sum(d["cost_usd"] for d in mine) == pytest.approx(5.0)
    assert {d["organization"] for d in mine} == {"acme"}


def test_other_organisations_see_nothing(db, priced, now):
    other = client_for("b", "viewer", "org-b")
    assert other.get(MODELS, span(now - timedelta(hours=4), now)).json()["models"] == []
    assert (
        other.get(SERIES, {"figure": "requests", **span(now - timedelta(hours=4), now)}).json()["series"]
        == []
    )
    assert other.get(DAILY).json()["days"] == []


@pytest.mark.parametrize(
    ("path", "params", "name"),
    [
        (MODELS, {"hours": "0"}, "hours"),
        (MODELS, {"hours": "abc"}, "hours"),
        (MODELS, {"by": "user"}, "by"),
        (MODELS, {"model": ""}, "model"),
        (MODELS, {"start": "yesterday"}, "start"),
        (MODELS, {"start": "1700003600", "end": "1700000000"}, "end"),
        (MODELS, {"organization": "x" * 300}, "organization"),
        (MODELS, {"user_id": "1"}, "user_id"),
        (SERIES, {}, "figure"),
        (SERIES, {"figure": "gpu"}, "figure"),
        (SERIES, {"figure": "cost", "points": "5"}, "points"),
        (DAILY, {"days": "1000"}, "days"),
    ],
)
def test_bad_parameters_are_a_400_naming_them(db, path, params, name):
    r = client_for("v", "viewer").get(path, params)
    assert r.status_code == 400, r.content
    assert name in r.json()["detail"]


def test_histogram_quantile_is_prometheus_arithmetic():
    inf = float("inf")
    assert histogram_quantile(0.5, {0.1: 0, 0.5: 10, 1.0: 20, inf: 20}) == pytest.approx(0.5)
    assert histogram_quantile(0.95, {0.1: 0, 0.5: 10, 1.0: 20, inf: 20}) == pytest.approx(0.5 + 0.5 * 0.9)
    assert histogram_quantile(0.5, {0.1: 10, inf: 10}) == pytest.approx(0.05)
    assert histogram_quantile(0.99, {0.1: 0, 1.0: 1, inf: 10}) == 1.0  # in +Inf: the highest finite bound
    assert histogram_quantile(0.5, {0.1: 0, inf: 0}) is None
    assert histogram_quantile(0.5, {0.1: 1}) is None  # no +Inf bucket


def test_long_ranges_read_hour_and_minute_rollups_then_raw_samples(db, metrics):
    """7 days: 1 h rollups up to their mark, 1 min rollups to theirs, raw after; twice (the hour sums are cached)."""
    from django.db import connection
    from django.utils import timezone

    from collector_server.monitoring.models import RollupState

    now = timezone.now()
    hour_mark = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    minute_mark = hour_mark + timedelta(minutes=30)
    sid = metrics.add(c.REQUESTS, [(minute_mark - timedelta(seconds=10), 1000.0), (minute_mark + timedelta(seconds=1), 1003.0)],
                      kind="counter", model="long", organization="", status="ok", host="gpu-1")  # fmt: skip
    with connection.cursor() as cursor:
        for h in range(1, 31):  # 30 closed hours, 10 requests each
            cursor.execute(
                "INSERT INTO monitoring_rollup_1h VALUES (%s, %s, 0, 0, 0, 1, 0, 10)",
                [sid, hour_mark - timedelta(hours=h)],
            )
        for m in range(30):  # 30 minutes after the hour mark, 1 request each
            cursor.execute(
                "INSERT INTO monitoring_rollup_1m VALUES (%s, %s, 0, 0, 0, 1, 0, 1)",
                [sid, hour_mark + timedelta(minutes=m)],
            )
        # tokens without a cost: 1,000 an hour, 100 a minute; 1 USD per 1k, 2 USD for the last 10 hours
        tokens = metrics.add(c.UNPRICED_INPUT_TOKENS, [(minute_mark - timedelta(seconds=10), 5.0)], kind="counter",
                             model="long", organization="", host="gpu-1")  # fmt: skip
        for h in range(1, 31):
            cursor.execute(
                "INSERT INTO monitoring_rollup_1h VALUES (%s, %s, 0, 0, 0, 1, 0, 1000)",
                [tokens, hour_mark - timedelta(hours=h)],
            )
        for m in range(30):
            cursor.execute(
                "INSERT INTO monitoring_rollup_1m VALUES (%s, %s, 0, 0, 0, 1, 0, 100)",
                [tokens, hour_mark + timedelta(minutes=m)],
            )
    ModelPrice.objects.create(
        model="long", input_per_1k=1, output_per_1k=0, valid_from=hour_mark - timedelta(days=3)
    )
    ModelPrice.objects.create(
        model="long", input_per_1k=2, output_per_1k=0, valid_from=hour_mark - timedelta(hours=10)
    )
    RollupState.objects.update_or_create(level="1h", defaults={"done_until": hour_mark})
    RollupState.objects.update_or_create(level="1m", defaults={"done_until": minute_mark})
    viewer = client_for("v", "viewer")
    for _ in range(2):
        rows = viewer.get(MODELS, {"hours": 168, "model": "long"}).json()["models"]
        assert rows[0]["requests"] == 300 + 30 + 3
        assert rows[0]["cost_usd"] == pytest.approx(20 * 1.0 + 10 * 2.0 + 3.0 * 2)
