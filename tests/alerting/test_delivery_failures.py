"""Slack and PagerDuty failures against real local receivers: 5xx is retried, 4xx fails and is counted."""

from __future__ import annotations

import pytest
from rq.registry import ScheduledJobRegistry

from alerting_worker.alerting import deliver
from alerting_worker.queues import NOTIFICATIONS, get_queue
from collector_server.alerts.metrics import alert_families
from collector_server.alerts.models import Channel, DeliveryAttempt, Notification
from collector_server.monitoring.prometheus import render
from tests.alerting.test_delivery import dispatch_and_work, fire, make_channel

pytestmark = pytest.mark.django_db


def slack(url: str) -> tuple[str, dict]:
    return "slack", {"webhook_url": url + "/services/T/B/X"}


def pagerduty(url: str) -> tuple[str, dict]:
    return "pagerduty", {"routing_key": "R0UT1NGKEY", "url": url + "/v2/enqueue"}


KINDS = [pytest.param(slack, id="slack"), pytest.param(pagerduty, id="pagerduty")]


@pytest.mark.parametrize("config", KINDS)
@pytest.mark.parametrize("code", [500, 503, 429])
def test_transient_failure_is_retried_then_sent(
    metrics, now, http_receiver, redis_client, django_capture_on_commit_callbacks, config, code
):
    receiver = http_receiver(status=lambda n: code if n == 1 else 202)
    channel = make_channel("out", *config(receiver.url))
    fire(metrics, now, channel)
    [note] = dispatch_and_work(redis_client, django_capture_on_commit_callbacks, now)
    note.refresh_from_db()
    assert note.status == "pending" and f"HTTP {code}" in note.last_error
    assert ScheduledJobRegistry(queue=get_queue(NOTIFICATIONS)).count == 1  # RQ's retry, with backoff
    assert deliver.deliver(note.pk) == "sent"  # what the retry does when it runs
    attempts = list(DeliveryAttempt.objects.filter(notification=note).order_by("at"))
    assert [(a.ok, a.permanent) for a in attempts] == [(False, False), (True, False)]
    assert len(receiver.requests) == 2 and receiver.requests[0].body == receiver.requests[1].body
    assert Channel.objects.get(pk=channel.pk).status == "ok"


@pytest.mark.parametrize("config", KINDS)
@pytest.mark.parametrize("code", [400, 403, 404])
def test_permanent_failure_fails_the_row_and_is_counted(
    metrics, now, http_receiver, redis_client, django_capture_on_commit_callbacks, config, code
):
    receiver = http_receiver(status=lambda n: code)
    channel = make_channel("out", *config(receiver.url))
    fire(metrics, now, channel)
    [note] = dispatch_and_work(redis_client, django_capture_on_commit_callbacks, now)
    note.refresh_from_db()
    assert note.status == "failed" and f"HTTP {code}" in note.last_error
    assert len(receiver.requests) == 1  # not retried
    assert ScheduledJobRegistry(queue=get_queue(NOTIFICATIONS)).count == 0
    assert DeliveryAttempt.objects.get(notification=note).permanent
    failing = Channel.objects.get(pk=channel.pk)
    assert failing.status == "failing" and f"HTTP {code}" in failing.last_error
    figures = render(alert_families())
    assert 'fleetwatch_notifications{channel="out",status="failed",organization="default"} 1' in figures
    assert 'fleetwatch_channel_failing{channel="out",organization="default"} 1' in figures
    assert Notification.objects.filter(channel=channel, status="failed").count() == 1
