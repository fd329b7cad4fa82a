"""The default inference rules fire and resolve under controlled time (evaluate_all(now) with written samples)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from alerting_worker.alerting import evaluate
from collector_server.alerts.models import Alert, AlertRule
from collector_server.inference.defaults import INFERENCE_RULES
from collector_server.inference.models import Budget, ModelPrice
from shared import inference as c
from tests.alerting.conftest import Metrics

NAMES = [spec["name"] for spec in INFERENCE_RULES]


@pytest.fixture
def rules(db) -> dict[str, AlertRule]:
    from collector_server.inference.defaults import ensure_rules
    from collector_server.orgs.scope import default_organization_id

    # The migration created them in the default organisation; a test before this one that
    # flushed the tables (a transactional test) took them away, so put back what is missing.
    ensure_rules(default_organization_id())
    AlertRule.objects.exclude(name__in=NAMES).update(enabled=False)
    found = {rule.name: rule for rule in AlertRule.objects.filter(name__in=NAMES)}
    assert set(found) == set(NAMES)
    return found


def state(rule: AlertRule) -> dict[str, str]:
    return {a.labels_key: a.state for a in Alert.objects.filter(rule=rule, state__in=Alert.ACTIVE_STATES)}


def counter(metrics: Metrics, name: str, points: list[tuple[datetime, float]], **labels: str) -> None:
    metrics.add(name, points, kind="counter", **labels)


def test_daily_budget_fires_at_80_and_100_percent_priced_by_the_table_and_resolves_next_day(
    rules, metrics, now
):
    ModelPrice.objects.create(
        model="qwen",
        input_per_1k=Decimal("0.1"),
        output_per_1k=Decimal("0.3"),
        valid_from=now - timedelta(days=2),
    )
    Budget.objects.create(customer_organization="acme", period="day", amount_usd=Decimal("1.00"))
    labels = {"model": "qwen", "organization": "acme", "host": "gpu-1"}
    t0 = now - timedelta(hours=2)
    # 0.25 USD reported, then 6000 input tokens without a cost: 6000/1000 x 0.1 = 0.6 -> 85 %
    counter(metrics, c.COST, [(t0, 0.0), (t0 + timedelta(minutes=1), 0.25)], **labels)
    counter(metrics, c.UNPRICED_INPUT_TOKENS, [(t0, 0.0), (t0 + timedelta(minutes=2), 6000)], **labels)
    counter(metrics, c.UNPRICED_OUTPUT_TOKENS, [(t0, 0.0)], **labels)
    # another organisation's spending is not acme's
    counter(metrics, c.COST, [(t0, 0.0), (t0 + timedelta(minutes=1), 50)], model="qwen", organization="other")
    evaluate.evaluate_all(now)
    key = f"budget={Budget.objects.get().pk},customer_organization=acme,model=,period=day"
    assert state(rules["LLM budget 80% used"]) == {key: "firing"}
    assert state(rules["LLM budget exceeded"]) == {}
    assert Alert.objects.get(rule=rules["LLM budget 80% used"]).value == pytest.approx(85.0)
    # 1000 output tokens more: 0.3 USD -> 115 %
    counter(metrics, c.UNPRICED_OUTPUT_TOKENS, [(now + timedelta(minutes=1), 1000)], **labels)
    later = now + timedelta(minutes=2)
    evaluate.evaluate_all(later)
    assert state(rules["LLM budget exceeded"]) == {key: "firing"}
    # the next day starts from nothing spent: both resolve
    tomorrow = now + timedelta(days=1)
    evaluate.evaluate_all(tomorrow)
    assert state(rules["LLM budget 80% used"]) == {}
    assert state(rules["LLM budget exceeded"]) == {}
    assert Alert.objects.filter(rule__name__startswith="LLM budget", state="resolved").count() == 2


def test_monthly_budget_of_one_model_fires_at_80_and_100_percent_and_resolves_next_month(rules, metrics, now):
    ModelPrice.objects.create(
        model="qwen",
        input_per_1k=Decimal("0.1"),
        output_per_1k=Decimal("0.3"),
        valid_from=now - timedelta(days=2),
    )
    budget = Budget.objects.create(model="qwen", period="month", amount_usd=Decimal("2.00"))
    t0 = now - timedelta(hours=2)  # today, so inside this month whatever the date
    acme = {"model": "qwen", "organization": "acme", "host": "gpu-1"}
    # 1.00 USD reported, then 7000 input tokens without a cost: 7 x 0.1 = 0.70 -> 1.70 of 2.00 = 85 %
    counter(metrics, c.COST, [(t0, 0.0), (t0 + timedelta(minutes=1), 1.0)], **acme)
    counter(metrics, c.UNPRICED_INPUT_TOKENS, [(t0, 0.0), (t0 + timedelta(minutes=2), 7000)], **acme)
    # another model's spending is not this budget's
    counter(
        metrics, c.COST, [(t0, 0.0), (t0 + timedelta(minutes=1), 500)], model="llama3", organization="acme"
    )
    evaluate.evaluate_all(now)
    key = f"budget={budget.pk},customer_organization=,model=qwen,period=month"
    assert state(rules["LLM monthly budget 80% used"]) == {key: "firing"}
    assert state(rules["LLM monthly budget exceeded"]) == {}
    assert Alert.objects.get(rule=rules["LLM monthly budget 80% used"]).value == pytest.approx(85.0)
    assert state(rules["LLM budget 80% used"]) == {}  # the daily rules leave a monthly budget alone
    # The budget covers every customer organisation: beta's 0.60 USD on qwen -> 2.30 = 115 %
    beta = {"model": "qwen", "organization": "beta", "host": "gpu-2"}
    counter(metrics, c.COST, [(now, 0.0), (now + timedelta(minutes=1), 0.6)], **beta)
    evaluate.evaluate_all(now + timedelta(minutes=2))
    assert state(rules["LLM monthly budget exceeded"]) == {key: "firing"}
    assert Alert.objects.get(rule=rules["LLM monthly budget exceeded"]).value == pytest.approx(115.0)
    # The last minute of the month still counts the whole month's spending.
    next_month = (now.replace(day=28) + timedelta(days=4)).replace(day=1, hour=0, minute=0)
    evaluate.evaluate_all(next_month - timedelta(minutes=1))
    assert state(rules["LLM monthly budget exceeded"]) == {key: "firing"}
    # The next month starts from nothing spent: both resolve.
    evaluate.evaluate_all(next_month + timedelta(minutes=1))
    assert state(rules["LLM monthly budget 80% used"]) == {}
    assert state(rules["LLM monthly budget exceeded"]) == {}
    assert Alert.objects.filter(rule__name__startswith="LLM monthly budget", state="resolved").count() == 2


def histogram_points(
    start: datetime, minutes: int, per_minute: list[tuple[float, int]], base: list[int]
) -> list:
    """Cumulative bucket counts per minute: each minute adds `count` observations of `value`."""
    bounds = [*c.TTFT_BUCKETS, float("inf")]
    out = []
    totals = list(base)
    for i in range(minutes + 1):
        out.append((start + timedelta(minutes=i), list(totals)))
        for value, count in per_minute:
            for j, bound in enumerate(bounds):
                if value <= bound:
                    totals[j] += count
    return out, totals


def write_histogram(metrics: Metrics, rows: list, **labels: str) -> None:
    les = c.bucket_labels(c.TTFT_BUCKETS)
    for j, le in enumerate(les):
        counter(metrics, c.TTFT + "_bucket", [(t, totals[j]) for t, totals in rows], le=le, **labels)


def test_slow_first_token_fires_after_5_minutes_and_resolves(rules, metrics, now):
    rule = rules["LLM slow first token"]
    start = now - timedelta(minutes=10)
    slow, totals = histogram_points(start, 20, [(4.0, 10)], [0] * 11)  # every token after 4 s
    write_histogram(metrics, slow, model="llama3", organization="", host="gpu-1")
    evaluate.evaluate_all(now)
    assert state(rule) == {"model=llama3": "pending"}
    evaluate.evaluate_all(now + timedelta(minutes=5))
    assert state(rule) == {"model=llama3": "firing"}
    assert Alert.objects.get(rule=rule).value == pytest.approx(2.5 + 2.5 * 0.95)
    fast, _ = histogram_points(now + timedelta(minutes=11), 10, [(0.02, 100)], totals)
    write_histogram(metrics, fast, model="llama3", organization="", host="gpu-1")
    evaluate.evaluate_all(now + timedelta(minutes=21))
    assert state(rule) == {}


def test_error_rate_above_5_percent_fires_and_resolves(rules, metrics, now):
    rule = rules["LLM error rate"]
    start = now - timedelta(minutes=10)
    minutes = range(0, 21)
    ok = [(start + timedelta(minutes=i), 90.0 * i) for i in minutes]
    errors = [(start + timedelta(minutes=i), 10.0 * min(i, 16)) for i in minutes]  # errors stop after 16 min
    counter(metrics, c.REQUESTS, ok, model="m", organization="", status="ok")
    counter(metrics, c.REQUESTS, errors, model="m", organization="", status="error")
    evaluate.evaluate_all(now)
    assert state(rule) == {"model=m": "pending"}
    evaluate.evaluate_all(now + timedelta(minutes=5))
    assert state(rule) == {"model=m": "firing"}
    assert Alert.objects.get(rule=rule).value == pytest.approx(10.0, abs=1.0)
    evaluate.evaluate_all(now + timedelta(minutes=11))  # the last 5 minutes have no errors
    assert state(rule) == {}


def test_kv_cache_above_90_percent_for_10_minutes_fires_and_resolves(rules, metrics, now):
    rule = rules["LLM KV cache full"]
    full = [(now - timedelta(seconds=s), 0.95) for s in range(0, 11 * 60, 15)]
    metrics.add(c.KV_CACHE, full, model="llama3", host="gpu-1")
    evaluate.evaluate_all(now - timedelta(minutes=10))
    assert state(rule) == {"host=gpu-1,model=llama3": "pending"}
    evaluate.evaluate_all(now)
    assert state(rule) == {"host=gpu-1,model=llama3": "firing"}
    metrics.add(
        c.KV_CACHE,
        [(now + timedelta(seconds=s), 0.4) for s in range(15, 120, 15)],
        model="llama3",
        host="gpu-1",
    )
    evaluate.evaluate_all(now + timedelta(minutes=2))
    assert state(rule) == {}


def test_a_burst_of_authentication_failures_fires_and_resolves(rules, metrics, now):
    rule = rules["Authentication failure burst"]
    points = [(now - timedelta(minutes=4), 0.0), (now - timedelta(minutes=2), 12.0), (now, 30.0)]
    counter(
        metrics, "http_auth_failures_total", points, service="gateway", route="/v1/chat", organization="x"
    )
    evaluate.evaluate_all(now)
    assert state(rule) == {"service=gateway": "firing"}
    counter(
        metrics,
        "http_auth_failures_total",
        [(now + timedelta(minutes=6), 30.0)],
        service="gateway",
        route="/v1/chat",
        organization="x",
    )
    evaluate.evaluate_all(now + timedelta(minutes=6))
    assert state(rule) == {}
