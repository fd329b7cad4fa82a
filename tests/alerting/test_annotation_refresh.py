"""A firing alert's templated annotations follow the current value, so a repeat tells it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from alerting_worker.alerting import evaluate
from collector_server.alerts.models import Alert, AlertEvent, AlertRule
from tests.alerting.conftest import disable_seeded_rules
from tests.alerting.test_delivery import dispatch_and_work, fire, make_channel


@pytest.mark.django_db
def test_repeat_notification_carries_the_current_value(
    metrics, now, http_receiver, redis_client, django_capture_on_commit_callbacks
):
    receiver = http_receiver()
    channel = make_channel("am", "webhook", {"url": receiver.url}, repeat_interval_seconds=600)
    alert = fire(metrics, now, channel, value=81.0)
    dispatch_and_work(redis_client, django_capture_on_commit_callbacks, now)
    later = now + timedelta(seconds=600)
    metrics.gauge("cpu", later, 99.0, host="web-1")
    evaluate.evaluate_all(later)
    dispatch_and_work(redis_client, django_capture_on_commit_callbacks, later)
    first, repeat = (r.body["alerts"][0] for r in receiver.wait(2))
    assert first["annotations"]["summary"] == "CPU on web-1 is 81.0%"
    assert repeat["annotations"]["summary"] == "CPU on web-1 is 99.0%"
    assert repeat["annotations"]["value"] == "99"
    alert.refresh_from_db()
    assert alert.summary == "CPU on web-1 is 99.0%" and alert.annotations["summary"] == alert.summary
    opened = AlertEvent.objects.filter(alert=alert).order_by("at", "pk").first()
    assert opened.to_state == "firing" and opened.value == 81.0  # the history keeps the first value


@pytest.mark.django_db
def test_pending_alert_fires_with_the_value_it_fired_at(metrics, now):
    disable_seeded_rules()
    rule = AlertRule(
        name="mem",
        query={"metric": "mem", "aggregation": "avg", "window": 60, "group_by": ["host"]},
        threshold=80,
        for_seconds=60,
        annotations={"summary": "Memory on {host} is {value:.0f}%", "description": "{value:.1f} > 80"},
    )
    rule.full_clean()
    rule.save()
    metrics.gauge("mem", now, 85.0, host="db-1")
    evaluate.evaluate_all(now)
    assert Alert.objects.get(rule=rule).summary == "Memory on db-1 is 85%"
    later = now + timedelta(seconds=60)
    metrics.gauge("mem", later, 93.0, host="db-1")
    evaluate.evaluate_all(later)
    alert = Alert.objects.get(rule=rule)
    assert alert.state == "firing" and alert.summary == "Memory on db-1 is 93%"
    assert alert.description == "93.0 > 80"
