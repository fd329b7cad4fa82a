"""Evaluation and the alert lifecycle, with time passed in explicitly."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection

from alerting_worker.alerting import evaluate
from collector_server.alerts.models import Alert, AlertEvent, AlertRule
from tests.alerting.conftest import disable_seeded_rules


@pytest.fixture
def cpu_rule(db):
    disable_seeded_rules()  # the seeded defaults stay out of these tests
    rule = AlertRule(
        name="cpu high",
        severity="high",
        query={"metric": "cpu", "aggregation": "avg", "window": 60, "group_by": ["host"]},
        comparison=">",
        threshold=80,
        for_seconds=120,
        annotations={"summary": "CPU on {host} is {value:.1f}%"},
    )
    rule.full_clean()
    rule.save()
    return rule


def states(rule) -> dict[str, str]:
    return {a.labels_key: a.state for a in Alert.objects.filter(rule=rule, state__in=Alert.ACTIVE_STATES)}


def test_breach_goes_pending_then_fires_after_for(cpu_rule, metrics, now):
    metrics.gauge("cpu", now, 95, host="a")
    evaluate.evaluate_all(now)
    assert states(cpu_rule) == {"host=a": "pending"}
    metrics.gauge("cpu", now + timedelta(seconds=60), 95, host="a")
    evaluate.evaluate_all(now + timedelta(seconds=60))
    assert states(cpu_rule) == {"host=a": "pending"}
    metrics.gauge("cpu", now + timedelta(seconds=120), 95, host="a")
    evaluate.evaluate_all(now + timedelta(seconds=120))
    alert = Alert.objects.get(rule=cpu_rule, state="firing")
    assert alert.summary == "CPU on a is 95.0%"
    assert alert.labels == {"host": "a", "alertname": "cpu high", "severity": "high"}
    assert [(e.from_state, e.to_state, e.value) for e in alert.events.order_by("at")] == [
        ("inactive", "pending", 95.0),
        ("pending", "firing", 95.0),
    ]


def test_pending_that_recovers_becomes_inactive_without_firing(cpu_rule, metrics, now):
    metrics.gauge("cpu", now, 95, host="a")
    evaluate.evaluate_all(now)
    later = now + timedelta(seconds=60)
    metrics.gauge("cpu", later, 10, host="a")
    evaluate.evaluate_all(later)
    alert = Alert.objects.get(rule=cpu_rule)
    assert alert.state == "inactive" and alert.fired_at is None


def test_one_alert_per_host(cpu_rule, metrics, now):
    cpu_rule.for_seconds = 0
    cpu_rule.save()
    for host, value in [("a", 95), ("b", 10), ("c", 99)]:
        metrics.gauge("cpu", now, value, host=host)
    evaluate.evaluate_all(now)
    assert states(cpu_rule) == {"host=a": "firing", "host=c": "firing"}


def test_firing_alert_resolves_with_the_value_recorded(cpu_rule, metrics, now):
    cpu_rule.for_seconds = 0
    cpu_rule.save()
    metrics.gauge("cpu", now, 95, host="a")
    evaluate.evaluate_all(now)
    later = now + timedelta(seconds=120)
    metrics.gauge("cpu", later, 20, host="a")
    evaluate.evaluate_all(later)
    alert = Alert.objects.get(rule=cpu_rule)
    assert alert.state == "resolved" and alert.resolved_at == later
    assert alert.events.get(to_state="resolved").value == 20.0


def test_recovery_threshold_keeps_the_alert_firing_until_crossed(cpu_rule, metrics, now):
    cpu_rule.for_seconds, cpu_rule.recovery_threshold = 0, 70
    cpu_rule.save()
    metrics.gauge("cpu", now, 95, host="a")
    evaluate.evaluate_all(now)
    t1 = now + timedelta(minutes=2)
    metrics.gauge("cpu", t1, 75, host="a")  # below the threshold, above the recovery threshold
    evaluate.evaluate_all(t1)
    assert states(cpu_rule) == {"host=a": "firing"}
    t2 = now + timedelta(minutes=4)
    metrics.gauge("cpu", t2, 65, host="a")
    evaluate.evaluate_all(t2)
    assert states(cpu_rule) == {}


def test_keep_firing_for_holds_the_alert_after_recovery(cpu_rule, metrics, now):
    cpu_rule.for_seconds, cpu_rule.keep_firing_for_seconds = 0, 300
    cpu_rule.save()
    metrics.gauge("cpu", now, 95, host="a")
    evaluate.evaluate_all(now)
    for minutes, expected in [(2, {"host=a": "firing"}), (4, {"host=a": "firing"}), (6, {})]:
        t = now + timedelta(minutes=minutes)
        metrics.gauge("cpu", t, 10, host="a")
        evaluate.evaluate_all(t)
        assert states(cpu_rule) == expected, minutes


def test_restart_keeps_the_pending_timer(cpu_rule, metrics, now):
    """State is in Postgres: a new evaluator process (fresh objects) continues the same `for` timer."""
    metrics.gauge("cpu", now, 95, host="a")
    evaluate.evaluate_all(now)
    # evaluate_all keeps nothing in memory between calls: a restarted worker starts from the same rows
    t = now + timedelta(seconds=120)
    metrics.gauge("cpu", t, 95, host="a")
    evaluate.evaluate_all(t)
    evaluate.evaluate_all(t + timedelta(seconds=15))
    alert = Alert.objects.get(rule=cpu_rule)
    assert alert.state == "firing" and alert.started_at == now
    assert AlertEvent.objects.filter(alert=alert, to_state="firing").count() == 1


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("alert", {"host=a": "firing"}), ("ok", {}), ("keep", {"host=a": "pending"})],
)
def test_no_data_policy(cpu_rule, metrics, now, policy, expected):
    cpu_rule.nodata_policy, cpu_rule.nodata_timeout_seconds = policy, 120
    # "keep" starts from a pending alert (value 50 breaches 40, `for` 10 min); the others from healthy.
    cpu_rule.threshold, cpu_rule.for_seconds = (40, 600) if policy == "keep" else (80, 0)
    cpu_rule.save()
    metrics.gauge("cpu", now, 50, host="a")  # then the host goes silent
    evaluate.evaluate_all(now)
    before = {"host=a": "pending"} if policy == "keep" else {}
    assert states(cpu_rule) == before
    evaluate.evaluate_all(now + timedelta(seconds=90))  # no data in the window, but within the timeout
    assert states(cpu_rule) == before
    evaluate.evaluate_all(now + timedelta(minutes=5))
    assert states(cpu_rule) == expected


def test_raised_severity_clears_the_acknowledgement(cpu_rule, metrics, now):
    cpu_rule.for_seconds = 0
    cpu_rule.save()
    metrics.gauge("cpu", now, 95, host="a")
    evaluate.evaluate_all(now)
    Alert.objects.filter(rule=cpu_rule).update(
        acknowledged_by="ann", acknowledged_at=now, ack_comment="on it"
    )
    cpu_rule.severity = "critical"
    cpu_rule.save()
    t = now + timedelta(seconds=15)
    metrics.gauge("cpu", t, 95, host="a")
    evaluate.evaluate_all(t)
    alert = Alert.objects.get(rule=cpu_rule)
    assert alert.severity == "critical" and alert.acknowledged_at is None and alert.acknowledged_by == ""
    assert alert.events.filter(note__contains="severity raised").count() == 1


def test_host_down_rule_fires_for_a_silent_agent(db, now):
    from collector_server.monitoring.models import Host

    AlertRule.objects.exclude(name="Host Down").update(enabled=False)
    Host.objects.create(agent_id="a", hostname="web-1", last_seen=now - timedelta(minutes=3))
    Host.objects.create(agent_id="b", hostname="web-2", last_seen=now - timedelta(seconds=20))
    evaluate.evaluate_all(now)
    firing = Alert.objects.get(state="firing")
    assert firing.name == "Host Down" and firing.host == "web-1" and firing.severity == "critical"


def test_a_failing_rule_does_not_stop_the_others(cpu_rule, metrics, now):
    AlertRule.objects.filter(pk=cpu_rule.pk).update(query={"metric": "cpu", "aggregation": "bogus"})
    other = AlertRule(name="mem", query={"metric": "mem", "window": 60}, threshold=1)
    other.save()
    metrics.gauge("mem", now, 5)
    stats = evaluate.evaluate_all(now)
    assert "cpu high" in stats.errors and "bogus" in stats.errors["cpu high"]
    assert Alert.objects.filter(rule=other, state="firing").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_evaluators_make_each_transition_once(partitions, now):
    from tests.alerting.conftest import Metrics

    disable_seeded_rules()
    rule = AlertRule(name="cpu", query={"metric": "cpu", "window": 60, "group_by": ["host"]}, threshold=80)
    rule.for_seconds = 30
    rule.save()
    metrics = Metrics()
    for i in range(30):
        metrics.gauge("cpu", now + timedelta(seconds=90), 95, span=90, host=f"h{i}")
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(at):
        try:
            barrier.wait()
            evaluate.evaluate_all(at)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    for at in (now + timedelta(seconds=30), now + timedelta(seconds=60), now + timedelta(seconds=75)):
        threads = [threading.Thread(target=run, args=(at,)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert Alert.objects.filter(rule=rule).count() == 30
    assert Alert.objects.filter(rule=rule, state="firing").count() == 30
    assert AlertEvent.objects.filter(rule=rule, to_state="pending").count() == 30
    assert AlertEvent.objects.filter(rule=rule, to_state="firing").count() == 30


def test_targeted_evaluation_touches_only_rules_on_the_named_metrics(cpu_rule, metrics, now):
    cpu_rule.for_seconds = 0
    cpu_rule.save()
    mem = AlertRule(
        name="mem high", query={"metric": "mem", "window": 60, "group_by": ["host"]}, threshold=80
    )
    mem.save()
    metrics.gauge("cpu", now, 95, host="a")
    metrics.gauge("mem", now, 95, host="a")
    stats = evaluate.evaluate_all(now, metrics={"mem"})
    assert stats.rules == 1
    assert list(Alert.objects.values_list("name", flat=True)) == ["mem high"]


def test_disabling_a_rule_resolves_its_open_alerts(cpu_rule, metrics, now):
    cpu_rule.for_seconds = 0
    cpu_rule.save()
    metrics.gauge("cpu", now, 95, host="a")
    evaluate.evaluate_all(now)
    cpu_rule.enabled = False
    cpu_rule.save()
    evaluate.evaluate_all(now + timedelta(seconds=15))
    alert = Alert.objects.get(rule=cpu_rule)
    assert alert.state == "resolved" and alert.events.filter(to_state="resolved").count() == 1


def test_firing_alert_is_notified_even_if_the_worker_died_before_dispatch(cpu_rule, metrics, now):
    """The transition is committed on its own; the next dispatch (any worker) derives the notification."""
    from alerting_worker.alerting import dispatch
    from collector_server.alerts.models import Channel, Notification

    channel = Channel.objects.create(name="hook", kind="webhook", config={"url": "http://127.0.0.1:9/"})
    cpu_rule.for_seconds = 0
    cpu_rule.save()
    cpu_rule.channels.add(channel)
    metrics.gauge("cpu", now, 95, host="a")
    evaluate.evaluate_all(now)  # ... and the worker dies here, before dispatching
    [note_id] = dispatch.dispatch_all(now + timedelta(seconds=45))
    assert Notification.objects.get(pk=note_id).payload["alerts"][0]["labels"]["host"] == "a"
