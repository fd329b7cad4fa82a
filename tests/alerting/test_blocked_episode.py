"""A manual alert named like a rule, with the same labels, holds the rule's episode: visibly."""

from __future__ import annotations

import logging
from datetime import timedelta

from alerting_worker.alerting import evaluate, jobs
from collector_server.alerts.models import Alert, AlertEvent, AlertRule
from tests.alerting.conftest import disable_seeded_rules


def make_rule() -> AlertRule:
    disable_seeded_rules()
    rule = AlertRule(
        name="cpu high", query={"metric": "cpu", "window": 60, "group_by": ["host"]}, threshold=80
    )
    rule.full_clean()
    rule.save()
    return rule


def manual(name: str = "cpu high") -> Alert:
    return Alert.objects.create(
        name=name,
        labels={"host": "a", "alertname": name, "severity": "high"},
        labels_key="host=a",
        severity="high",
        state="firing",
        manual=True,
    )


def test_manual_alert_blocking_a_rule_is_logged_and_recorded_once(db, metrics, now, caplog):
    rule = make_rule()
    held = manual()
    metrics.gauge("cpu", now, 95, host="a")
    with caplog.at_level(logging.WARNING, logger="alerting_worker.alerting.evaluate"):
        stats = evaluate.evaluate_all(now)
    assert stats.errors == {} and stats.blocked == [("cpu high", "host=a")]
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "cpu high" in warning.getMessage() and "host=a" in warning.getMessage()
    assert "manual alert" in warning.getMessage()
    [event] = AlertEvent.objects.filter(alert=held, note__startswith=evaluate.BLOCKED_NOTE)
    assert "'cpu high'" in event.note and "host=a" in event.note
    assert not Alert.objects.filter(rule=rule).exists()

    caplog.clear()
    later = now + timedelta(seconds=15)
    metrics.gauge("cpu", later, 95, host="a")
    with caplog.at_level(logging.WARNING, logger="alerting_worker.alerting.evaluate"):
        again = evaluate.evaluate_all(later)
    assert again.blocked == [("cpu high", "host=a")] and again.errors == {}
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # told once, not every cycle
    assert AlertEvent.objects.filter(alert=held, note__startswith=evaluate.BLOCKED_NOTE).count() == 1


def test_rule_opens_its_episode_once_the_manual_alert_is_resolved(db, metrics, now):
    rule = make_rule()
    held = manual()
    metrics.gauge("cpu", now, 95, host="a")
    assert jobs.evaluate_and_dispatch(now)["blocked"] == 1
    Alert.objects.filter(pk=held.pk).update(state="resolved")
    later = now + timedelta(seconds=15)
    metrics.gauge("cpu", later, 95, host="a")
    result = jobs.evaluate_and_dispatch(later)
    assert result["blocked"] == 0
    assert Alert.objects.get(rule=rule, state__in=Alert.ACTIVE_STATES).labels_key == "host=a"


def test_a_manual_alert_with_other_labels_blocks_nothing(db, metrics, now):
    rule = make_rule()
    manual()
    metrics.gauge("cpu", now, 95, host="b")
    stats = evaluate.evaluate_all(now)
    assert stats.blocked == []
    assert Alert.objects.get(rule=rule).labels_key == "host=b"
