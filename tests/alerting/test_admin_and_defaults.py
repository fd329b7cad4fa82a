"""Admin pages (rule preview, test send), default channels from the environment, the periodic job."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from alerting_worker.jobs_guard import build_worker
from alerting_worker.queues import ALERTS, NOTIFICATIONS, get_queue
from collector_server.alerts.defaults import ensure_default_channels
from collector_server.alerts.models import Alert, AlertRule, Channel

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_logged_in(db) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw-root-123"))
    return client


def test_rule_admin_shows_the_current_value_per_host(admin_client_logged_in, metrics):
    metrics.gauge("system_cpu_usage_percent", datetime.now(UTC), 93.5, host="web-7")
    metrics.gauge("system_cpu_usage_percent", datetime.now(UTC), 12.0, host="web-8")
    rule = AlertRule.objects.get(name="High CPU Usage")
    page = admin_client_logged_in.get(f"/admin/alerts/alertrule/{rule.pk}/change/").content.decode()
    assert "<td>host=web-7</td><td>93.5</td><td>yes</td>" in page
    assert "<td>host=web-8</td><td>12</td><td>no</td>" in page


def test_admin_rejects_the_same_bad_rule_as_the_api(admin_client_logged_in):
    rule = AlertRule.objects.get(name="High CPU Usage")
    form = {
        "name": rule.name,
        "severity": "high",
        "enabled": "on",
        "query_type": "metric",
        "query": '{"metric": "system_cpu_usage_percent", "aggregation": "median"}',
        "comparison": ">",
        "threshold": "80",
        "for_seconds": "300",
        "keep_firing_for_seconds": "0",
        "nodata_policy": "keep",
        "nodata_timeout_seconds": "300",
        "labels": "{}",
        "annotations": "{}",
        "created_at_0": "2026-01-01",
        "created_at_1": "00:00:00",
    }
    response = admin_client_logged_in.post(f"/admin/alerts/alertrule/{rule.pk}/change/", form)
    assert response.status_code == 200  # the form comes back with the error instead of saving
    assert "unknown aggregation &#x27;median&#x27;" in response.content.decode()


def test_admin_send_test_notification_action(
    admin_client_logged_in, http_receiver, redis_client, django_capture_on_commit_callbacks
):
    receiver = http_receiver()
    channel = Channel.objects.create(name="hook", kind="webhook", config={"url": receiver.url})
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_logged_in.post(
            "/admin/alerts/channel/",
            {"action": "send_test_notification", "_selected_action": [channel.pk]},
            follow=True,
        )
    assert "Test notification to hook queued" in response.content.decode()
    build_worker([get_queue(NOTIFICATIONS)], name="test-notify").work(burst=True)
    assert receiver.wait(1)[0].body["groupLabels"] == {"alertname": "TestNotification"}


def test_failing_channel_is_shown_as_failing_in_the_admin(admin_client_logged_in):
    Channel.objects.create(name="dead", kind="webhook", config={"url": "http://x"}, status="failing")
    page = admin_client_logged_in.get("/admin/alerts/channel/").content.decode()
    assert '<b style="color:#c00">failing</b>' in page


def test_default_channels_are_created_from_the_environment_once(settings):
    settings.SMTP_SERVER, settings.SMTP_PORT = "smtp.example.com", 587
    settings.ALERT_FROM_EMAIL, settings.ALERT_TO_EMAILS = "alerts@example.com", ["ops@example.com"]
    settings.SMTP_USERNAME, settings.SMTP_PASSWORD = "alerts@example.com", "app-password"
    settings.SLACK_WEBHOOK_URL = "https://hooks.slack.com/services/T/B/X"
    settings.ALERT_COOLDOWN_PERIOD = 1800
    assert sorted(ensure_default_channels()) == ["email (environment)", "slack (environment)"]
    email = Channel.objects.get(name="email (environment)")
    assert (
        email.config["security"] == "starttls"
        and email.config["to"] == ["ops@example.com"]
        and email.is_default
    )
    assert ensure_default_channels() == []


def test_bad_environment_channel_setting_names_the_variable(settings):
    settings.SMTP_SERVER, settings.ALERT_TO_EMAILS = "", []
    settings.SLACK_WEBHOOK_URL = "not-a-url"
    with pytest.raises(ImproperlyConfigured) as info:
        ensure_default_channels()
    assert "SLACK_WEBHOOK_URL" in str(info.value)


def test_no_environment_settings_create_no_channels(settings):
    settings.SMTP_SERVER, settings.SLACK_WEBHOOK_URL = "", ""
    assert ensure_default_channels() == []


def test_periodic_job_runs_through_a_real_rq_worker(redis_client, metrics):
    AlertRule.objects.exclude(name="Critical Memory Usage").update(enabled=False)
    AlertRule.objects.filter(name="Critical Memory Usage").update(for_seconds=0)
    metrics.gauge("system_memory_usage_percent", datetime.now(UTC), 97.0, host="db-1")
    job = get_queue(ALERTS).enqueue("alerting_worker.alerting.jobs.evaluate_and_dispatch")
    build_worker([get_queue(ALERTS)], name="test-alerts").work(burst=True)
    job.refresh()
    assert job.get_status() == "finished", job.latest_result()
    assert job.return_value()["transitions"] == 1
    alert = Alert.objects.get(state="firing")
    assert alert.summary == "Memory on db-1 is 97.0%" and alert.severity == "critical"


def test_alerting_figures_render_for_prometheus(db):
    from collector_server.alerts.metrics import alert_families
    from collector_server.monitoring.prometheus import render

    Alert.objects.create(name="x", labels={}, labels_key="", severity="high", state="firing")
    Channel.objects.create(name="hook", kind="webhook", config={}, suppressed_count=4, status="failing")
    text = render(alert_families())
    assert 'fleetwatch_alerts_open{state="firing",severity="high",organization="default"} 1' in text
    assert 'fleetwatch_notifications_suppressed_total{channel="hook",organization="default"} 4' in text
    assert 'fleetwatch_channel_failing{channel="hook",organization="default"} 1' in text
