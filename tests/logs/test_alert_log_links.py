"""An alert of a log_count rule links to its records, also for a group whose label is empty."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from alerting_worker.alerting import evaluate
from collector_server.alerts.models import Alert, AlertRule
from tests.alerting.conftest import disable_seeded_rules
from tests.logs.conftest import record


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def test_link_of_a_group_without_service_lists_exactly_its_records(api, store, now):
    disable_seeded_rules()  # only this test's rule is evaluated
    ago = datetime.now(UTC).timestamp() - now.timestamp()  # records relative to `now`
    # a tailed file: no service
    store([record("disk failed", level="ERROR", ago=ago + 10 + i) for i in range(3)], host="web-1")
    store([record("request failed", level="ERROR", ago=ago + 10, service="api")] * 4, host="web-1")
    store([record("slow", level="WARNING", ago=ago + 10)], host="web-1")  # other level: not counted
    rule = AlertRule(
        name="Errors per service",
        query_type="log_count",
        query={"level": "ERROR", "window": 300, "group_by": ["service"]},
        comparison=">",
        threshold=2,
        for_seconds=0,
    )
    rule.full_clean()
    rule.save()
    evaluate.evaluate_all(now)
    alerts = {a.labels.get("service"): a for a in Alert.objects.filter(rule=rule, state="firing")}
    assert set(alerts) == {"", "api"}
    assert alerts[""].value == 3.0

    links = {}
    for service, alert in alerts.items():
        detail = api.get(f"/api/v1/monitoring/alerts/{alert.pk}")
        assert detail.status_code == 200
        links[service] = detail.json()["logs_api_url"]
    assert "service=&" in links[""] or links[""].endswith("service=")
    page = api.get(links[""])
    assert page.status_code == 200, page.content
    body = page.json()
    assert body["count"] == 3
    assert {(r["service"], r["level"], r["message"]) for r in body["data"]} == {("", "ERROR", "disk failed")}
    other = api.get(links["api"]).json()
    assert other["count"] == 4
    assert {r["service"] for r in other["data"]} == {"api"}


def test_search_with_an_empty_service_matches_records_without_one(api, store):
    store([record("from a file"), record("from the app", service="api")])
    body = api.get("/api/v1/logs/search", {"service": ""}).json()
    assert [r["message"] for r in body["data"]] == ["from a file"]
    both = api.get("/api/v1/logs/search").json()
    assert both["count"] == 2
    empty_logger = api.get("/api/v1/logs/search", {"logger": " "}).json()
    assert empty_logger["count"] == 2  # neither record names a logger
    assert api.get("/api/v1/logs/search", {"service": ",,"}).status_code == 400
