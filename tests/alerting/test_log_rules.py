"""Log-based alert rules (query type ``log_count``): counting, lifecycle, validation, the link to the records."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from alerting_worker.alerting import deliver, dispatch, evaluate, payloads, transports
from alerting_worker.ingest.logs_handler import write_logs
from collector_server.alerts import log_query
from collector_server.alerts import query as q
from collector_server.alerts.models import Alert, AlertRule, Channel
from shared.wire import Batch
from tests.alerting.conftest import disable_seeded_rules
from tests.members import member

pytestmark = pytest.mark.django_db
BASE = "/api/v1/monitoring"
_seq = itertools.count(1)
API_ERRORS = {"level": "ERROR", "service": "api", "window": 300, "group_by": ["host"]}


class Logs:
    """Store records through the real ingest handler, timestamps relative to the test's `now`."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def add(
        self,
        host: str,
        count: int,
        message: str = "request failed",
        level: str = "ERROR",
        service: str = "api",
        ago: float = 10.0,
        step: float = 1.0,
        **extra: Any,
    ) -> int:
        """Write `count` records on `host`, the newest `ago` seconds before now, `step` seconds apart."""
        start = self.now.timestamp() - ago
        records = [
            {"ts": start - i * step, "level": level, "service": service, "message": message, **extra}
            for i in range(count)
        ]
        batch = Batch(
            kind="logs",
            agent_id=f"agent-{host}",
            host=host,
            agent_version="test",
            epoch=1,
            seq=next(_seq),
            sent_at=self.now.timestamp(),
            logs=records,
        )
        with connection.cursor() as cursor:
            written = write_logs(cursor.cursor, [batch])
        assert written == count
        return written


@pytest.fixture
def logs(partitions, now) -> Logs:
    disable_seeded_rules()  # only the rules of the test are evaluated
    return Logs(now)


def make_rule(name: str = "API errors", query: dict | None = None, **fields: Any) -> AlertRule:
    fields = {"threshold": 50, "comparison": ">", "for_seconds": 0, **fields}
    rule = AlertRule(name=name, query_type="log_count", query=query or dict(API_ERRORS), **fields)
    rule.full_clean()
    rule.save()
    return rule


def counts(query: dict, now: datetime) -> dict[str, float | None]:
    qt = q.get("log_count")
    return {key: g.value for key, g in qt.evaluate(qt.validate(query), now).groups.items()}


def open_states(rule: AlertRule) -> dict[str, str]:
    return {a.labels_key: a.state for a in Alert.objects.filter(rule=rule, state__in=Alert.ACTIVE_STATES)}


@pytest.fixture
def operator(db) -> APIClient:
    client = APIClient()
    client.force_authenticate(member(User.objects.create_user("ann", password="pw-ann-123")))
    return client


def test_more_than_50_api_errors_in_5_min_goes_pending_then_firing_per_host(logs, now):
    rule = make_rule(for_seconds=60)
    logs.add("web-1", 51, step=2)  # 51 ERRORs from api within the last 2 minutes: breaches
    logs.add("web-2", 50, step=2)  # exactly 50: does not
    logs.add("web-2", 30, service="web")  # other service
    logs.add("web-2", 30, level="WARNING")  # other level
    logs.add("web-2", 30, ago=301)  # older than the window
    assert counts(API_ERRORS, now) == {"host=web-1": 51.0, "host=web-2": 50.0}

    evaluate.evaluate_all(now)
    assert open_states(rule) == {"host=web-1": "pending"}
    evaluate.evaluate_all(now + timedelta(seconds=60))
    assert open_states(rule) == {"host=web-1": "firing"}
    alert = Alert.objects.get(rule=rule)
    assert (
        alert.value == 51.0 and alert.labels["host"] == "web-1" and alert.labels["alertname"] == "API errors"
    )


def test_alert_resolves_when_the_count_falls_below_and_when_records_leave_the_window(logs, now):
    rule = make_rule()
    logs.add("web-1", 60, ago=100)
    logs.add("web-2", 60, ago=10)
    evaluate.evaluate_all(now)
    assert open_states(rule) == {"host=web-1": "firing", "host=web-2": "firing"}
    # 170 s later the window starts 130 s before `now`: of web-1's records (100..159 s old at `now`)
    # the 31 aged 100..130 s are left; web-2's (10..69 s old) are all still in it.
    later = now + timedelta(seconds=170)
    assert counts(API_ERRORS, later) == {"host=web-1": 31.0, "host=web-2": 60.0}
    evaluate.evaluate_all(later)
    assert open_states(rule) == {"host=web-2": "firing"}
    # Once every record is out of the window the group is absent from the result: a count of 0.
    evaluate.evaluate_all(now + timedelta(seconds=400))
    assert open_states(rule) == {}
    assert set(Alert.objects.filter(rule=rule).values_list("state", flat=True)) == {"resolved"}


def test_rule_without_group_by_counts_everything_and_reads_zero_when_nothing_matches(logs, now):
    query = {"min_level": "ERROR", "window": 60}
    assert counts(query, now) == {"": 0.0}
    logs.add("web-1", 3, level="CRITICAL", service="billing")
    logs.add("web-2", 2, level="ERROR")
    logs.add("web-2", 5, level="WARNING")
    assert counts(query, now) == {"": 5.0}


def test_host_that_went_quiet_reads_zero_for_a_fewer_than_rule(logs, now):
    rule = make_rule(
        "api quiet",
        query={"service": "api", "window": 300, "group_by": ["host"]},
        comparison="<",
        threshold=1,
        nodata_timeout_seconds=3600,
    )
    logs.add("web-1", 5, level="INFO", ago=1200)  # last logged 20 minutes ago
    logs.add("web-2", 5, level="INFO", ago=60)
    logs.add("web-3", 5, level="INFO", ago=4000)  # beyond the no-data timeout: no longer a known group
    evaluate.evaluate_all(now)
    assert open_states(rule) == {"host=web-1": "firing"}
    assert Alert.objects.get(rule=rule).value == 0.0


def test_pattern_is_a_case_insensitive_regex_unless_case_sensitive(logs, now):
    logs.add("web-1", 4, message="Timeout after 5000ms calling db")
    logs.add("web-1", 3, message="timeout after 30s")  # no "ms"
    logs.add("web-1", 2, message="connection refused")
    query = {"pattern": r"timeout after \d+ms", "window": 300}
    assert counts(query, now) == {"": 4.0}
    assert counts({**query, "case_sensitive": True}, now) == {"": 0.0}
    assert counts({**query, "pattern": "^timeout"}, now) == {"": 7.0}


def test_level_is_exact_and_min_level_includes_the_levels_above(logs, now):
    for level, n in (("DEBUG", 1), ("INFO", 2), ("WARNING", 3), ("ERROR", 4), ("CRITICAL", 5)):
        logs.add("web-1", n, level=level)
    assert counts({"level": "warn"}, now) == {"": 3.0}  # aliases are accepted
    assert counts({"level": ["ERROR", "CRITICAL"]}, now) == {"": 9.0}
    assert counts({"min_level": "WARNING"}, now) == {"": 12.0}


def test_filters_on_host_service_logger_and_grouping_by_service_and_host(logs, now):
    logs.add("web-1", 2, service="api", logger="app.db")
    logs.add("web-1", 3, service="web", logger="app.db")
    logs.add("web-2", 4, service="api", logger="app.http")
    logs.add("web-3", 7, service="api", logger="app.db")
    query = {"host": ["web-1", "web-2"], "logger": "app.db", "group_by": ["service", "host"]}
    assert counts(query, now) == {"host=web-1,service=api": 2.0, "host=web-1,service=web": 3.0}
    assert counts({"service": "api", "group_by": ["logger"]}, now) == {
        "logger=app.db": 9.0,
        "logger=app.http": 4.0,
    }


def test_one_shared_statement_gives_what_each_rule_gives_alone(logs, now):
    logs.add("web-1", 12, message="disk full", level="CRITICAL", service="db", ago=30, step=20)
    logs.add("web-2", 8, message="Slow query 900ms", level="WARNING", service="db")
    logs.add("web-2", 5, message="request failed", level="ERROR", service="api", ago=200)
    logs.add("web-3", 1, level="INFO", ago=5000)  # outside every window, inside the last rule's lookback
    queries = [
        q.get("log_count").validate(x)
        for x in (
            {"min_level": "WARNING", "group_by": ["host"], "window": 120},
            {"service": "db", "group_by": ["host", "level"], "window": 600},
            {"pattern": "slow|full", "group_by": ["service"]},
            {"level": "ERROR", "window": 60},
            {"group_by": ["host"], "window": 3600},
        )
    ]
    lookbacks = [0, 0, 0, 0, 7200]
    together = log_query.evaluate_log_batch(queries, now, lookbacks)
    alone = [log_query.evaluate_log_batch([x], now, [b])[0] for x, b in zip(queries, lookbacks, strict=True)]
    assert [{k: g.value for k, g in r.groups.items()} for r in together] == [
        {k: g.value for k, g in r.groups.items()} for r in alone
    ]
    # and the figures are the expected ones, not just equal
    # web-1: the CRITICAL records aged 30, 50, 70, 90 and 110 s are within 120 s
    assert {k: g.value for k, g in together[0].groups.items()} == {"host=web-1": 5.0, "host=web-2": 8.0}
    assert {k: g.value for k, g in together[1].groups.items()} == {
        "host=web-1,level=CRITICAL": 12.0,
        "host=web-2,level=WARNING": 8.0,
    }
    assert {k: g.value for k, g in together[3].groups.items()} == {"": 0.0}
    assert {k: g.value for k, g in together[4].groups.items()} == {
        "host=web-1": 12.0,
        "host=web-2": 13.0,
        "host=web-3": 0.0,
    }


def test_evaluation_cycle_counts_several_log_rules_with_one_statement(logs, now):
    a = make_rule("api errors", threshold=5)
    b = make_rule(
        "db warnings", query={"service": "db", "min_level": "WARNING", "group_by": ["host"]}, threshold=1
    )
    logs.add("web-1", 6)
    logs.add("db-1", 2, service="db", level="WARNING")
    with CaptureQueriesContext(connection) as captured:
        evaluate.evaluate_all(now)
    scans = [x["sql"] for x in captured.captured_queries if "FROM logs_entry" in x["sql"]]
    assert len(scans) == 1
    assert open_states(a) == {"host=web-1": "firing"} and open_states(b) == {"host=db-1": "firing"}


def test_bad_regex_is_rejected_by_clean_naming_the_query_field(db):
    for pattern in ("(unclosed", "a{2,1}"):
        rule = AlertRule(name="bad", query_type="log_count", query={"pattern": pattern}, threshold=1)
        with pytest.raises(ValidationError) as exc:
            rule.full_clean()
        assert "query" in exc.value.message_dict
        assert "pattern" in exc.value.message_dict["query"][0]


def test_regex_python_accepts_but_postgres_refuses_is_rejected_too(db):
    rule = AlertRule(name="bad", query_type="log_count", query={"pattern": "(?P<word>x)"}, threshold=1)
    with pytest.raises(ValidationError) as exc:
        rule.full_clean()
    assert "Postgres" in exc.value.message_dict["query"][0]


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"level": "LOUD"}, "level"),
        ({"level": "ERROR", "min_level": "WARNING"}, "min_level"),
        ({"group_by": ["message"]}, "group_by"),
        ({"service": 5}, "service"),
        ({"host": "web-1,web-2"}, "host"),
        ({"window": 0}, "window"),
        ({"regex": "x"}, "regex"),
        ({"case_sensitive": "yes"}, "case_sensitive"),
    ],
)
def test_bad_log_count_parameters_are_rejected_naming_them(db, query, named):
    rule = AlertRule(name="bad", query_type="log_count", query=query, threshold=1)
    with pytest.raises(ValidationError) as exc:
        rule.full_clean()
    assert named in exc.value.message_dict["query"][0]


def test_api_creates_a_log_count_rule_and_previews_it(operator, logs, now):
    body = {
        "name": "Many API errors",
        "query_type": "log_count",
        "query": {"level": "error", "service": "api", "window": 300, "group_by": ["host"]},
        "comparison": ">",
        "threshold": 50,
    }
    response = operator.post(f"{BASE}/rules", body, format="json")
    assert response.status_code == 201, response.json()
    stored = response.json()["query"]
    assert stored["level"] == ["ERROR"] and stored["window"] == 300 and stored["group_by"] == ["host"]
    logs.now = datetime.now(now.tzinfo)  # the preview evaluates at the real now
    logs.add("web-9", 3)
    preview = operator.get(f"{BASE}/rules/{response.json()['id']}/preview").json()["data"]
    assert preview == [{"labels": {"host": "web-9"}, "value": 3.0, "breaches": False}]
    unsaved = operator.post(f"{BASE}/rules/preview", {**body, "name": "x", "threshold": 2}, format="json")
    assert unsaved.json()["data"] == [{"labels": {"host": "web-9"}, "value": 3.0, "breaches": True}]


def test_api_rejects_a_bad_regex_with_400_naming_the_field(operator):
    body = {"name": "bad", "query_type": "log_count", "query": {"pattern": "(oops"}, "threshold": 1}
    response = operator.post(f"{BASE}/rules", body, format="json")
    assert response.status_code == 400
    text = str(response.json())
    assert "query" in text and "pattern" in text and "(oops" in text
    assert not AlertRule.objects.filter(name="bad").exists()


def test_logs_url_lists_exactly_the_records_of_the_window(operator, logs, now):
    rule = make_rule(query={**API_ERRORS, "pattern": "failed"}, threshold=3)
    logs.add("web-1", 4)  # counted
    logs.add("web-1", 1, ago=300)  # exactly at the window start: inclusive on both sides, counted
    logs.add("web-1", 1, ago=0)  # exactly at now: the window is [now - 5 min, now), not counted
    logs.add("web-1", 2, ago=301)  # before the window
    logs.add("web-1", 3, message="request ok")  # pattern does not match
    logs.add("web-1", 3, level="WARNING")
    logs.add("web-2", 9, service="web")
    logs.add("web-2", 2)  # another host: its own group, below the threshold
    evaluate.evaluate_all(now)
    alert = Alert.objects.get(rule=rule)
    assert alert.state == "firing" and alert.value == 5.0

    data = operator.get(f"{BASE}/alerts/{alert.pk}").json()
    assert data["logs_url"].startswith("/logs/?")  # the UI page, with the same query
    assert data["logs_url"].split("?", 1)[1] == data["logs_api_url"].split("?", 1)[1]
    url = data["logs_api_url"]
    assert url.startswith("/api/v1/logs/search?")
    page = operator.get(url).json()
    assert page["success"] is True and page["count"] == 5 and page["next_cursor"] is None
    assert {(r["host"], r["service"], r["level"], r["message"]) for r in page["data"]} == {
        ("web-1", "api", "ERROR", "request failed")
    }
    window = (now - timedelta(seconds=300), now)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM logs_entry WHERE ts >= %s AND ts < %s AND host = 'web-1' AND service = 'api' "
            "AND level = 'ERROR' AND message ~* 'failed'",
            list(window),
        )
        expected = {row[0] for row in cursor.fetchall()}
    assert {r["id"] for r in page["data"]} == expected


def test_logs_url_follows_the_last_breach_after_the_alert_resolves(operator, logs, now):
    rule = make_rule(threshold=3)
    logs.add("web-1", 4)
    evaluate.evaluate_all(now)
    evaluate.evaluate_all(now + timedelta(seconds=400))
    alert = Alert.objects.get(rule=rule)
    assert alert.state == "resolved"
    page = operator.get(operator.get(f"{BASE}/alerts/{alert.pk}").json()["logs_api_url"]).json()
    assert page["count"] == 4  # the records that made it fire, not the empty window it resolved in


def test_alert_of_a_metric_rule_has_no_logs_url_and_keeps_its_admin_link(operator, metrics, now):
    disable_seeded_rules()
    rule = AlertRule(name="cpu", query={"metric": "cpu", "window": 60, "group_by": ["host"]}, threshold=80)
    rule.full_clean()
    rule.save()
    metrics.gauge("cpu", now, 95, host="web-1")
    evaluate.evaluate_all(now)
    alert = Alert.objects.get(rule=rule)
    assert operator.get(f"{BASE}/alerts/{alert.pk}").json()["logs_url"] is None
    entry = payloads.alert_entry(alert, "firing")
    assert entry["generatorURL"].endswith(f"/admin/alerts/alert/{alert.pk}/change/")
    assert "logs_url" not in entry["annotations"]


def test_webhook_notification_links_to_the_records(logs, now, webhook_channel, operator):
    _, receiver = webhook_channel
    rule = make_rule(threshold=3)
    logs.add("web-1", 4)
    evaluate.evaluate_all(now)
    [note_id] = dispatch.dispatch_all(now)
    assert deliver.deliver(note_id) == "sent"
    [received] = receiver.wait(1)
    [entry] = received.body["alerts"]
    assert entry["labels"]["host"] == "web-1"
    assert entry["generatorURL"] == entry["annotations"]["logs_url"]
    assert "/logs/?" in entry["annotations"]["logs_url"]
    assert "/api/v1/logs/search?" in entry["annotations"]["logs_api_url"]
    path = entry["annotations"]["logs_api_url"].split("://", 1)[1].split("/", 1)[1]
    assert operator.get("/" + path).json()["count"] == 4
    assert Alert.objects.get(rule=rule).state == "firing"


def test_slack_email_and_pagerduty_show_the_log_link(logs, now, http_receiver):
    rule = make_rule(threshold=3)
    logs.add("web-1", 4)
    evaluate.evaluate_all(now)
    alert = Alert.objects.get(rule=rule)
    channel = Channel(name="slack", kind="slack", config={"webhook_url": "http://127.0.0.1:9/x"})
    payload = payloads.alertmanager(channel, "k", {"alertname": rule.name}, [alert], [], now)
    link = payload["alerts"][0]["annotations"]["logs_url"]
    receiver = http_receiver()
    transports.get("slack").send({"webhook_url": receiver.url, "channel": ""}, payload, "key-1")
    [received] = receiver.wait(1)
    [attachment] = received.body["attachments"]
    assert attachment["title_link"] == link and f"<{link}|Log records>" in attachment["text"]
    assert f"log records: {link}" in transports.email_body(payload)
    transports.get("pagerduty").send({"routing_key": "r" * 32, "url": receiver.url}, payload, "key-2")
    event = receiver.wait(2)[1].body
    assert event["links"] == [{"href": link, "text": "Log records"}]


def test_admin_alert_page_links_to_the_records_and_rule_admin_evaluates_now(logs, now):
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw-root-123"))
    rule = make_rule(threshold=3)
    logs.add("web-1", 4)
    evaluate.evaluate_all(now)
    alert = Alert.objects.get(rule=rule)
    page = client.get(f"/admin/alerts/alert/{alert.pk}/change/").content.decode()
    url = log_query.alert_logs_url(alert)
    assert url and f'href="{url.replace("&", "&amp;")}"' in page
    logs.now = datetime.now(now.tzinfo)
    logs.add("web-5", 2)
    rule_page = client.get(f"/admin/alerts/alertrule/{rule.pk}/change/").content.decode()
    assert "<td>host=web-5</td><td>2</td><td>no</td>" in rule_page


def test_admin_form_saves_a_log_count_rule_and_refuses_a_bad_regex(db):
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw-root-123"))
    form = {
        "name": "Payment timeouts",
        "severity": "high",
        "enabled": "on",
        "query_type": "log_count",
        "query": '{"service": "billing", "pattern": "(timeout", "window": 600}',
        "comparison": ">",
        "threshold": "10",
        "for_seconds": "0",
        "keep_firing_for_seconds": "0",
        "nodata_policy": "keep",
        "nodata_timeout_seconds": "300",
        "labels": "{}",
        "annotations": "{}",
        "created_at_0": "2026-01-01",
        "created_at_1": "00:00:00",
    }
    response = client.post("/admin/alerts/alertrule/add/", form)
    assert response.status_code == 200  # the form comes back with the error instead of saving
    assert "pattern &#x27;(timeout&#x27; is not a valid regular expression" in response.content.decode()
    assert not AlertRule.objects.filter(name="Payment timeouts").exists()
    response = client.post("/admin/alerts/alertrule/add/", {**form, "query": form["query"].replace("(", "")})
    assert response.status_code == 302
    rule = AlertRule.objects.get(name="Payment timeouts")
    assert rule.query["pattern"] == "timeout" and rule.query["service"] == ["billing"]
