"""Grouping, silences, inhibition, flapping and rate limits, with time passed in explicitly."""

from __future__ import annotations

from datetime import time, timedelta

import pytest

from alerting_worker.alerting import dispatch, evaluate
from collector_server.alerts.models import Alert, AlertRule, Channel, Notification, Silence
from tests.alerting.conftest import disable_seeded_rules

pytestmark = pytest.mark.django_db


@pytest.fixture
def channel(db):
    disable_seeded_rules()
    ch = Channel(name="hook", kind="webhook", config={"url": "http://127.0.0.1:9/x"}, is_default=True)
    ch.full_clean()
    ch.save()
    return ch


@pytest.fixture
def rule(channel):
    r = AlertRule(name="cpu", query={"metric": "cpu", "window": 30, "group_by": ["host"]}, threshold=80)
    r.full_clean()
    r.save()
    r.channels.add(channel)
    return r


def step(metrics, at, **values):
    for host, value in values.items():
        metrics.gauge("cpu", at, value, span=30, host=host)  # the rules' 30 s window sees only this step
    evaluate.evaluate_all(at)
    return [Notification.objects.get(pk=pk) for pk in dispatch.dispatch_all(at)]


def summary(note: Notification) -> list[tuple[str, str]]:
    return sorted((a["status"], a["labels"]["host"]) for a in note.payload["alerts"])


def test_group_wait_batches_alerts_of_one_group(metrics, rule, now):
    assert step(metrics, now, a=95) == []  # group_wait (30 s) not over
    assert step(metrics, now + timedelta(seconds=15), b=95) == []
    [note] = step(metrics, now + timedelta(seconds=30), a=95, b=95)
    assert summary(note) == [("firing", "a"), ("firing", "b")]
    assert note.payload["groupLabels"] == {"alertname": "cpu"} and note.payload["status"] == "firing"


def test_alert_resolved_within_group_wait_sends_nothing(metrics, rule, now):
    step(metrics, now, a=95)
    assert step(metrics, now + timedelta(seconds=15), a=10) == []
    assert step(metrics, now + timedelta(seconds=45), a=10) == []
    assert Notification.objects.count() == 0


def test_changes_wait_for_group_interval_and_resolution_is_told(metrics, rule, now):
    step(metrics, now, a=95)
    assert len(step(metrics, now + timedelta(seconds=30), a=95)) == 1
    assert step(metrics, now + timedelta(seconds=60), a=95, b=95) == []  # group_interval is 5 min
    [update] = step(metrics, now + timedelta(seconds=330), a=95, b=95)
    assert summary(update) == [("firing", "a"), ("firing", "b")]
    [resolved] = step(metrics, now + timedelta(seconds=700), a=10, b=10)
    assert summary(resolved) == [("resolved", "a"), ("resolved", "b")]
    assert resolved.payload["status"] == "resolved"
    assert step(metrics, now + timedelta(seconds=1100), a=10, b=10) == []


def test_repeat_only_after_the_repeat_interval(metrics, rule, now):
    rule.repeat_interval_seconds = 1800
    rule.save()
    step(metrics, now, a=95)
    step(metrics, now + timedelta(seconds=30), a=95)
    assert step(metrics, now + timedelta(seconds=1000), a=95) == []
    [repeat] = step(metrics, now + timedelta(seconds=1830), a=95)
    assert summary(repeat) == [("firing", "a")]


def test_silenced_alert_changes_state_but_is_told_only_when_the_silence_ends(metrics, rule, now):
    silence = Silence(
        matchers=[{"name": "host", "op": "=", "value": "a"}],
        starts_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(minutes=10),
        created_by="ann",
        comment="reboot",
    )
    silence.full_clean()
    silence.save()
    assert step(metrics, now + timedelta(seconds=60), a=95) == []
    alert = Alert.objects.get(rule=rule)
    assert alert.state == "firing" and alert.silenced and alert.display_state == "silenced"
    [told] = step(metrics, now + timedelta(minutes=11), a=95)
    assert summary(told) == [("firing", "a")]
    assert not Alert.objects.get(rule=rule).silenced


def test_weekly_maintenance_window_silences_only_inside_the_window(db, now):
    sunday = now - timedelta(days=(now.weekday() - 6) % 7)
    silence = Silence(
        matchers={"host": "db-1"},
        starts_at=sunday - timedelta(days=30),
        recurrence_days=[6],
        window_start=time(2, 0),
        window_minutes=120,
    )
    silence.full_clean()
    at = sunday.replace(hour=2, minute=0)
    assert silence.is_active(at) and silence.is_active(at + timedelta(minutes=119))
    assert not silence.is_active(at + timedelta(minutes=120))
    assert not silence.is_active(at - timedelta(minutes=1))
    assert not silence.is_active(at + timedelta(days=1))
    assert silence.matches({"host": "db-1"}) and not silence.matches({"host": "db-2"})


def test_recurring_silence_without_a_window_is_rejected_naming_the_field(db):
    from django.core.exceptions import ValidationError

    silence = Silence(matchers={"host": "x"}, recurrence_days=[6])
    with pytest.raises(ValidationError) as info:
        silence.full_clean()
    assert {"window_start", "window_minutes"} <= set(info.value.message_dict)


def test_host_down_inhibits_the_other_alerts_of_that_host(metrics, rule, channel, now):
    from collector_server.monitoring.models import Host

    down = AlertRule.objects.get(name="Host Down")
    down.enabled = True
    down.save()
    down.channels.add(channel)
    metrics.gauge("cpu", now, 95, host="a")
    metrics.gauge("cpu", now, 95, host="b")
    Host.objects.filter(hostname="a").update(last_seen=now - timedelta(minutes=5))
    Host.objects.filter(hostname="b").update(last_seen=now)
    evaluate.evaluate_all(now)
    notes = [Notification.objects.get(pk=pk) for pk in dispatch.dispatch_all(now + timedelta(seconds=30))]
    told = sorted(
        (n.payload["groupLabels"]["alertname"], h) for n in notes for h in [x for _, x in summary(n)]
    )
    assert told == [("Host Down", "a"), ("cpu", "b")]
    assert Alert.objects.get(rule=rule, labels_key="host=a").inhibited


def test_flapping_alert_is_told_once_not_at_every_change(metrics, rule, channel, now):
    channel.group_wait_seconds, channel.group_interval_seconds = 0, 30
    channel.save()
    at = now
    sent = []
    for i in range(16):  # flips every 30 s: fire, resolve, fire, ...
        value = 95 if i % 2 == 0 else 10
        sent.extend(step(metrics, at, a=value))
        at += timedelta(seconds=30)
    statuses = [s for n in sent for s, _ in summary(n)]
    assert len(statuses) < 8, statuses  # without flap detection: one message per change (15)
    assert Alert.objects.filter(rule=rule, flapping=True).exists()
    flapping_told = [n for n in sent if any(a["annotations"].get("flapping") for a in n.payload["alerts"])]
    assert flapping_told == sent[-1:]  # told once that it flaps, then nothing for the remaining changes


def test_rate_limit_suppresses_and_counts_the_excess(metrics, channel, now):
    channel.rate_limit_per_hour, channel.group_by = 3, ["alertname", "host"]
    channel.save()
    r = AlertRule(name="cpu", query={"metric": "cpu", "window": 30, "group_by": ["host"]}, threshold=80)
    r.save()
    r.channels.add(channel)
    values = {f"h{i}": 95 for i in range(5)}
    step(metrics, now, **values)
    notes = step(metrics, now + timedelta(seconds=30), **values)
    assert sorted(n.status for n in notes) == ["pending"] * 3 + ["suppressed"] * 2
    assert Channel.objects.get(pk=channel.pk).suppressed_count == 2


def test_raised_severity_is_told_at_the_next_group_interval(metrics, rule, now):
    step(metrics, now, a=95)
    [first] = step(metrics, now + timedelta(seconds=30), a=95)
    assert [a["labels"]["severity"] for a in first.payload["alerts"]] == ["medium"]
    rule.severity = "critical"
    rule.save()
    assert step(metrics, now + timedelta(seconds=60), a=95) == []  # raised, but group_interval is 5 min
    assert Alert.objects.get(rule=rule).severity == "critical"
    [update] = step(metrics, now + timedelta(seconds=330), a=95)
    assert [a["labels"]["severity"] for a in update.payload["alerts"]] == ["critical"]
    assert summary(update) == [("firing", "a")]
    assert step(metrics, now + timedelta(seconds=700), a=95) == []  # told once, not again until repeat


def test_raised_severity_after_a_quiet_interval_goes_out_at_once(metrics, rule, now):
    step(metrics, now, a=95)
    step(metrics, now + timedelta(seconds=30), a=95)
    rule.severity = "high"
    rule.save()
    [update] = step(metrics, now + timedelta(seconds=400), a=95)  # group_interval long over
    assert [a["labels"]["severity"] for a in update.payload["alerts"]] == ["high"]
