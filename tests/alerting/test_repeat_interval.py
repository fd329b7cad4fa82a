"""Where a group's repeat interval comes from: the rule's, else the channel's, else ALERT_COOLDOWN_PERIOD."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.apps import apps

from alerting_worker.alerting import dispatch, evaluate
from collector_server.alerts.defaults import DEFAULT_RULES, ensure_default_channels
from collector_server.alerts.models import AlertRule, Channel, Notification
from tests.members import member

pytestmark = pytest.mark.django_db

CPU = "High CPU Usage"  # a default rule, as the migrations left it


@pytest.fixture
def cpu_default(db) -> AlertRule:
    """The seeded High CPU Usage rule alone, firing at once (its repeat interval left as migrated)."""
    AlertRule.objects.exclude(name=CPU).update(enabled=False)
    AlertRule.objects.filter(name=CPU).update(for_seconds=0)
    return AlertRule.objects.get(name=CPU)


def channel(**extra) -> Channel:
    ch = Channel(
        name="hook",
        kind="webhook",
        config={"url": "http://127.0.0.1:9/x"},
        group_wait_seconds=0,
        is_default=True,
        **extra,
    )
    ch.full_clean()
    ch.save()
    return ch


def step(metrics, at) -> list[str]:
    """Breach at ``at`` and dispatch; return the status of each notification written."""
    metrics.gauge("system_cpu_usage_percent", at, 95.0, host="web-1", core="")
    evaluate.evaluate_all(at)
    return [Notification.objects.get(pk=pk).payload["status"] for pk in dispatch.dispatch_all(at)]


def test_default_rules_set_no_repeat_interval_of_their_own(db):
    rules = AlertRule.objects.filter(name__in=[spec["name"] for spec in DEFAULT_RULES])
    assert rules.count() == len(DEFAULT_RULES) == 7
    assert set(rules.values_list("repeat_interval_seconds", flat=True)) == {None}


def test_frozen_migration_data_created_the_rules_as_defined(db):
    for spec in DEFAULT_RULES:
        rule = AlertRule.objects.get(name=spec["name"])
        assert {k: getattr(rule, k) for k in spec} == spec


@pytest.mark.parametrize("cooldown", [600, 3600])
def test_alert_cooldown_period_sets_the_default_rules_repeat(cpu_default, metrics, now, settings, cooldown):
    settings.ALERT_COOLDOWN_PERIOD = cooldown
    channel(repeat_interval_seconds=None)
    assert step(metrics, now) == ["firing"]
    assert step(metrics, now + timedelta(seconds=cooldown - 15)) == []
    assert step(metrics, now + timedelta(seconds=cooldown)) == ["firing"]  # the repeat


def test_changing_the_setting_changes_the_environment_channels_repeat(cpu_default, metrics, now, settings):
    settings.SMTP_SERVER, settings.ALERT_TO_EMAILS = "", []
    settings.SLACK_WEBHOOK_URL = "http://127.0.0.1:9/services/T/B/X"
    settings.ALERT_COOLDOWN_PERIOD = 1800
    ensure_default_channels()
    slack = Channel.objects.get(name="slack (environment)")
    assert slack.repeat_interval_seconds is None and slack.effective_repeat_seconds == 1800
    slack.group_wait_seconds = 0
    slack.save()
    settings.ALERT_COOLDOWN_PERIOD = 900  # changed after the channel was created: still applies
    assert step(metrics, now) == ["firing"]
    assert step(metrics, now + timedelta(seconds=900)) == ["firing"]


def test_zero_cooldown_means_alertmanagers_four_hours(cpu_default, metrics, now, settings):
    settings.ALERT_COOLDOWN_PERIOD = 0
    channel(repeat_interval_seconds=None)
    assert step(metrics, now) == ["firing"]
    assert step(metrics, now + timedelta(hours=3, minutes=59)) == []
    assert step(metrics, now + timedelta(hours=4)) == ["firing"]


def test_channel_value_beats_the_setting(cpu_default, metrics, now, settings):
    settings.ALERT_COOLDOWN_PERIOD = 600
    channel()  # the model's default: 4 h, Alertmanager's repeat_interval
    assert step(metrics, now) == ["firing"]
    assert step(metrics, now + timedelta(seconds=600)) == []
    assert step(metrics, now + timedelta(hours=4)) == ["firing"]


def test_explicit_rule_value_beats_channel_and_setting(cpu_default, metrics, now, settings):
    settings.ALERT_COOLDOWN_PERIOD = 3600
    channel(repeat_interval_seconds=7200)
    cpu_default.repeat_interval_seconds = 300
    cpu_default.save()
    assert step(metrics, now) == ["firing"]
    assert step(metrics, now + timedelta(seconds=285)) == []
    assert step(metrics, now + timedelta(seconds=300)) == ["firing"]


def test_migration_clears_only_the_old_hard_coded_value():
    migration = importlib.import_module("collector_server.alerts.migrations.0003_repeat_interval_inherits")
    AlertRule.objects.filter(name=CPU).update(repeat_interval_seconds=1800)  # as 0002 left it
    AlertRule.objects.filter(name="Host Down").update(repeat_interval_seconds=900)  # an operator's choice
    migration.inherit(apps, None)
    assert AlertRule.objects.get(name=CPU).repeat_interval_seconds is None
    assert AlertRule.objects.get(name="Host Down").repeat_interval_seconds == 900
    migration.hard_code(apps, None)  # the reverse puts the old value back
    assert AlertRule.objects.get(name=CPU).repeat_interval_seconds == 1800


def test_api_accepts_a_blank_repeat_interval(db):
    from django.contrib.auth.models import User
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(member(User.objects.create_user("ann")))
    rule = AlertRule.objects.get(name=CPU)
    response = client.patch(
        f"/api/v1/monitoring/rules/{rule.pk}", {"repeat_interval_seconds": 600}, format="json"
    )
    assert response.status_code == 200 and response.json()["repeat_interval_seconds"] == 600
    response = client.patch(
        f"/api/v1/monitoring/rules/{rule.pk}", {"repeat_interval_seconds": None}, format="json"
    )
    assert response.status_code == 200 and response.json()["repeat_interval_seconds"] is None
    created = client.post(
        "/api/v1/monitoring/channels",
        {
            "name": "c",
            "kind": "webhook",
            "config": {"url": "http://x.example/h"},
            "repeat_interval_seconds": None,
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert Channel.objects.get(name="c").repeat_interval_seconds is None
