"""The outbox and the channels, delivered to real local HTTP and SMTP servers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone
from rq.registry import ScheduledJobRegistry

from alerting_worker.alerting import deliver, dispatch, evaluate, jobs
from alerting_worker.jobs_guard import build_worker
from alerting_worker.queues import NOTIFICATIONS, get_queue
from collector_server.alerts.fingerprint import label_fingerprint
from collector_server.alerts.models import Alert, AlertRule, Channel, DeliveryAttempt, Notification
from tests.alerting.conftest import disable_seeded_rules


def make_channel(name: str, kind: str, config: dict, **extra) -> Channel:
    channel = Channel(name=name, kind=kind, config=config, group_wait_seconds=0, **extra)
    channel.full_clean()
    channel.save()
    return channel


def fire(metrics, now, channel: Channel, host: str = "web-1", value: float = 97.0) -> Alert:
    disable_seeded_rules()
    rule, _ = AlertRule.objects.get_or_create(
        name="cpu high",
        defaults={
            "query": {"metric": "cpu", "aggregation": "avg", "window": 60, "group_by": ["host"]},
            "threshold": 80,
            "severity": "high",
            "annotations": {"summary": "CPU on {host} is {value:.1f}%"},
        },
    )
    rule.channels.add(channel)
    metrics.gauge("cpu", now, value, host=host)
    evaluate.evaluate_all(now)
    return Alert.objects.get(rule=rule, labels_key=f"host={host}")


def resolve(metrics, now, host: str = "web-1") -> None:
    metrics.gauge("cpu", now, 5.0, host=host)
    evaluate.evaluate_all(now)


def work(redis_client) -> None:
    build_worker([get_queue(NOTIFICATIONS)], name="test-notify").work(burst=True)


def dispatch_and_work(redis_client, django_capture_on_commit_callbacks, at) -> list[Notification]:
    with django_capture_on_commit_callbacks(execute=True):
        ids = dispatch.dispatch_all(at)
    work(redis_client)
    return [Notification.objects.get(pk=pk) for pk in ids]


@pytest.mark.django_db
def test_webhook_gets_the_alertmanager_payload_for_firing_and_resolved(
    metrics, now, http_receiver, redis_client, django_capture_on_commit_callbacks
):
    receiver = http_receiver()
    channel = make_channel("am", "webhook", {"url": receiver.url + "/alerts", "headers": {"X-Token": "t"}})
    fire(metrics, now, channel)
    [note] = dispatch_and_work(redis_client, django_capture_on_commit_callbacks, now)
    [request] = receiver.wait(1)
    body = request.body
    assert request.path == "/alerts" and request.headers["X-Token"] == "t"
    assert request.headers["Idempotency-Key"] == note.idempotency_key
    assert {"version", "groupKey", "status", "receiver", "groupLabels", "commonLabels", "alerts"} <= set(body)
    assert body["version"] == "4" and body["status"] == "firing" and body["receiver"] == "am"
    [alert] = body["alerts"]
    assert alert["labels"] == {"alertname": "cpu high", "host": "web-1", "severity": "high"}
    assert alert["annotations"]["summary"] == "CPU on web-1 is 97.0%"
    assert alert["startsAt"].endswith("Z") and alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert Notification.objects.get(pk=note.pk).status == "sent"
    attempt = DeliveryAttempt.objects.get(notification=note)
    assert attempt.ok and attempt.response == "HTTP 200 (2xx)"  # status only, never the body

    later = now + timedelta(minutes=6)
    resolve(metrics, later)
    dispatch_and_work(redis_client, django_capture_on_commit_callbacks, later)
    resolved = receiver.wait(2)[1].body
    assert resolved["status"] == "resolved" and resolved["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"


@pytest.mark.django_db
def test_slack_message_names_the_alert_and_its_host(
    metrics, now, http_receiver, redis_client, django_capture_on_commit_callbacks
):
    receiver = http_receiver()
    channel = make_channel("slack", "slack", {"webhook_url": receiver.url + "/services/T/B/X"})
    fire(metrics, now, channel)
    dispatch_and_work(redis_client, django_capture_on_commit_callbacks, now)
    body = receiver.wait(1)[0].body
    assert body["text"] == "[FIRING:1] cpu high"
    [attachment] = body["attachments"]
    assert attachment["title"] == "[FIRING] cpu high" and attachment["text"] == "CPU on web-1 is 97.0%"
    assert {"title": "host", "value": "web-1", "short": True} in attachment["fields"]


@pytest.mark.django_db
def test_pagerduty_gets_trigger_then_resolve_with_a_stable_dedup_key(
    metrics, now, http_receiver, redis_client, django_capture_on_commit_callbacks
):
    receiver = http_receiver(status=lambda n: 202)
    channel = make_channel(
        "pd", "pagerduty", {"routing_key": "R0UT1NGKEY", "url": receiver.url + "/v2/enqueue"}
    )
    fire(metrics, now, channel)
    dispatch_and_work(redis_client, django_capture_on_commit_callbacks, now)
    later = now + timedelta(minutes=6)
    resolve(metrics, later)
    dispatch_and_work(redis_client, django_capture_on_commit_callbacks, later)
    trigger, resolve_event = (r.body for r in receiver.wait(2))
    assert trigger["event_action"] == "trigger" and resolve_event["event_action"] == "resolve"
    stable = label_fingerprint({"alertname": "cpu high", "host": "web-1"})  # severity left out
    assert trigger["dedup_key"] == resolve_event["dedup_key"] == stable
    assert trigger["routing_key"] == "R0UT1NGKEY"
    assert trigger["payload"]["severity"] == "error" and trigger["payload"]["source"] == "web-1"


@pytest.mark.django_db
def test_email_is_received_by_a_real_smtp_server(
    metrics, now, smtp_server, redis_client, django_capture_on_commit_callbacks
):
    sink, port = smtp_server
    config = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from": "alerts@example.com",
        "to": "ops@example.com, admin@example.com",
    }
    channel = make_channel("mail", "email", config)
    fire(metrics, now, channel)
    [note] = dispatch_and_work(redis_client, django_capture_on_commit_callbacks, now)
    [(envelope, message)] = sink.messages
    assert sorted(envelope.rcpt_tos) == ["admin@example.com", "ops@example.com"]
    assert message["Subject"] == "[FIRING:1] cpu high"
    assert note.idempotency_key.replace(":", ".") in message["Message-ID"]
    assert "CPU on web-1 is 97.0%" in message.get_payload()


@pytest.mark.django_db
def test_transient_failure_is_retried_by_rq_and_every_attempt_recorded(
    metrics, now, http_receiver, redis_client, django_capture_on_commit_callbacks
):
    receiver = http_receiver(status=lambda n: 503 if n == 1 else 200)
    channel = make_channel("flaky", "webhook", {"url": receiver.url})
    fire(metrics, now, channel)
    [note] = dispatch_and_work(redis_client, django_capture_on_commit_callbacks, now)
    note.refresh_from_db()
    assert note.status == "pending" and "HTTP 503" in note.last_error
    assert ScheduledJobRegistry(queue=get_queue(NOTIFICATIONS)).count == 1  # RQ will retry with backoff
    assert deliver.deliver(note.pk) == "sent"  # what the retry does when it runs
    attempts = list(DeliveryAttempt.objects.filter(notification=note).order_by("at"))
    assert [a.ok for a in attempts] == [False, True]
    assert not attempts[0].permanent and attempts[0].duration_ms >= 0
    assert len({r.headers["Idempotency-Key"] for r in receiver.requests}) == 1


@pytest.mark.django_db
def test_permanent_failure_marks_the_channel_failing_and_uses_the_fallback(
    metrics, now, http_receiver, redis_client, django_capture_on_commit_callbacks
):
    broken = http_receiver(status=lambda n: 404)
    backup = http_receiver()
    fallback = make_channel("backup", "webhook", {"url": backup.url})
    channel = make_channel("broken", "webhook", {"url": broken.url}, fallback=fallback)
    fire(metrics, now, channel)
    [note_id] = dispatch.dispatch_all(now)
    with django_capture_on_commit_callbacks(execute=True):  # the fallback copy is enqueued after commit
        assert jobs.deliver_notification(note_id) == "failed"
    work(redis_client)
    assert Notification.objects.get(pk=note_id).status == "failed"
    failing = Channel.objects.get(pk=channel.pk)
    assert failing.status == "failing" and "HTTP 404" in failing.last_error
    assert DeliveryAttempt.objects.get(notification_id=note_id).permanent
    assert len(broken.requests) == 1  # a permanent error is not retried
    assert backup.wait(1)[0].body["alerts"][0]["labels"]["host"] == "web-1"


@pytest.mark.django_db
def test_notification_written_but_never_enqueued_is_delivered_by_the_sweeper(
    metrics, now, http_receiver, redis_client
):
    """A worker that died after writing the outbox row (before enqueueing or sending) loses nothing."""
    receiver = http_receiver()
    channel = make_channel("hook", "webhook", {"url": receiver.url})
    fire(metrics, now, channel)
    [note_id] = dispatch.dispatch_all(now)  # on_commit never runs here: the enqueue is lost
    assert jobs.sweep_outbox(now) == 0  # too fresh to call lost
    assert jobs.sweep_outbox(now + timedelta(minutes=2)) == 1
    work(redis_client)
    assert len(receiver.wait(1)) == 1
    assert Notification.objects.get(pk=note_id).status == "sent"
    assert jobs.sweep_outbox(now + timedelta(minutes=10)) == 0


@pytest.mark.django_db
def test_two_deliveries_of_one_row_send_it_once(metrics, now, http_receiver):
    receiver = http_receiver()
    channel = make_channel("hook", "webhook", {"url": receiver.url})
    fire(metrics, now, channel)
    [note_id] = dispatch.dispatch_all(now)
    assert deliver.deliver(note_id) == "sent"
    assert deliver.deliver(note_id) == "skipped"
    assert len(receiver.requests) == 1


DELIVER_SCRIPT = """
import django, sys
django.setup()
from alerting_worker.alerting import deliver
deliver.deliver(int(sys.argv[1]))
"""


@pytest.mark.django_db(transaction=True)
def test_worker_killed_after_sending_resends_with_the_same_idempotency_key(partitions, now, http_receiver):
    """A worker killed after the send, before recording it: the resend carries the same key, so the
    receiver can drop it (the channel's own idempotency); nothing is sent under a new identity."""
    from django.conf import settings

    from tests.alerting.conftest import Metrics

    receiver = http_receiver(delay=30)  # holds the response so the worker dies mid-delivery
    channel = make_channel("hook", "webhook", {"url": receiver.url})
    fire(Metrics(), now, channel)
    [note_id] = dispatch.dispatch_all(now)
    db = settings.DATABASES["default"]
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "collector_server.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{host}:{port}/{db['NAME']}",
        "FLEETWATCH_ALLOW_INSECURE_KEY": "true",
    }
    proc = subprocess.Popen([sys.executable, "-c", DELIVER_SCRIPT, str(note_id)], env=env)
    try:
        assert receiver.got.wait(20), "the worker never sent"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert Notification.objects.get(pk=note_id).status == "sending"
    receiver.delay = 0
    assert deliver.stale(timezone.now()) == []  # within the lease nobody resends
    later = timezone.now() + deliver.LEASE + timedelta(seconds=1)
    assert deliver.stale(later) == [note_id]
    assert deliver.deliver(note_id, now=later) == "sent"
    keys = [r.headers["Idempotency-Key"] for r in receiver.requests]
    assert len(keys) == 2 and len(set(keys)) == 1
    assert Notification.objects.get(pk=note_id).attempts == 2


def _tls_email_config(port: int, password: str) -> dict:
    return {
        "host": "127.0.0.1",
        "port": port,
        "security": "starttls",
        "username": "alerts",
        "password": password,
        "from": "alerts@example.com",
        "to": ["ops@example.com"],
        "insecure_skip_verify": True,  # the test server's certificate is self-signed
    }


@pytest.mark.django_db
def test_email_over_starttls_with_auth_is_delivered(metrics, now, tls_smtp_server):
    sink, port = tls_smtp_server
    channel = make_channel("mail", "email", _tls_email_config(port, "app-password"))
    fire(metrics, now, channel)
    [note_id] = dispatch.dispatch_all(now)
    assert deliver.deliver(note_id) == "sent"
    [(envelope, message)] = sink.messages
    assert envelope.rcpt_tos == ["ops@example.com"] and message["Subject"] == "[FIRING:1] cpu high"


@pytest.mark.django_db
def test_email_with_a_wrong_password_fails_permanently(metrics, now, tls_smtp_server):
    sink, port = tls_smtp_server
    channel = make_channel("mail", "email", _tls_email_config(port, "wrong"))
    fire(metrics, now, channel)
    [note_id] = dispatch.dispatch_all(now)
    assert deliver.deliver(note_id) == "failed"
    attempt = DeliveryAttempt.objects.get(notification_id=note_id)
    assert attempt.permanent and "authentication failed" in attempt.response
    assert Channel.objects.get(pk=channel.pk).status == "failing" and sink.messages == []


@pytest.mark.django_db
def test_unexpected_send_error_is_retried_then_fails_instead_of_hanging(metrics, now, http_receiver):
    """An exception that is not a TransportError must not leave the row 'sending' forever."""
    receiver = http_receiver()
    channel = make_channel("hook", "webhook", {"url": receiver.url})
    fire(metrics, now, channel)
    [note_id] = dispatch.dispatch_all(now)
    Channel.objects.filter(pk=channel.pk).update(config={})  # broken behind validation's back
    outcomes = []
    for _ in range(deliver.max_attempts()):
        try:
            outcomes.append(jobs.deliver_notification(note_id))
        except deliver.DeliveryRetry:
            outcomes.append("retry")
    assert outcomes[-1] == "failed" and set(outcomes[:-1]) == {"retry"}
    assert Notification.objects.get(pk=note_id).status == "failed"
    assert all("unexpected" in a.response for a in DeliveryAttempt.objects.filter(notification_id=note_id))
