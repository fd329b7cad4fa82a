"""End to end with real processes: a fleetwatch-worker evaluates, dispatches and delivers to a webhook."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerting_worker.queues import ALERTS, get_queue
from collector_server.alerts.models import AlertRule, Channel, DeliveryAttempt


@pytest.mark.django_db(transaction=True)
def test_worker_process_evaluates_and_notifies_the_webhook(
    partitions, redis_client, redis_url, http_receiver
):
    from django.conf import settings

    from tests.alerting.conftest import Metrics, disable_seeded_rules

    receiver = http_receiver()
    disable_seeded_rules()
    channel = Channel(name="hook", kind="webhook", config={"url": receiver.url}, group_wait_seconds=0)
    channel.full_clean()
    channel.save()
    rule = AlertRule(
        name="disk full", query={"metric": "disk", "window": 60, "group_by": ["host"]}, threshold=90
    )
    rule.full_clean()
    rule.save()
    rule.channels.add(channel)
    Metrics().gauge("disk", datetime.now(UTC), 97.0, host="db-1")
    get_queue(ALERTS).enqueue("alerting_worker.alerting.jobs.evaluate_and_dispatch")

    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": redis_url,
        "FLEETWATCH_ALLOW_INSECURE_KEY": "true",
    }
    worker = Path(sys.executable).parent / "fleetwatch-worker"
    done = subprocess.run(
        [str(worker), "--queues", "alerts,notifications", "--burst"],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    [request] = receiver.wait(1)
    assert request.body["status"] == "firing"
    assert request.body["alerts"][0]["labels"] == {
        "alertname": "disk full",
        "host": "db-1",
        "severity": "medium",
    }
    assert DeliveryAttempt.objects.get().ok
