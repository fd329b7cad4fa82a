"""Delivery retries run in a real fleetwatch-worker process (RQ's scheduler moves them back)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from rq.registry import ScheduledJobRegistry

from alerting_worker.alerting import deliver, dispatch, evaluate
from alerting_worker.queues import NOTIFICATIONS, get_queue
from collector_server.alerts.models import AlertRule, Channel, DeliveryAttempt, Notification
from tests.alerting.conftest import disable_seeded_rules


def worker_env(redis_url: str, **extra: str) -> dict[str, str]:
    db = settings.DATABASES["default"]
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": redis_url,
        "FLEETWATCH_ALLOW_INSECURE_KEY": "true",
        "LOG_FORMAT": "text",
        **extra,
    }


def test_retry_intervals_follow_the_setting(settings):
    settings.NOTIFY_RETRY_INTERVALS = [2, 4]
    assert deliver.retry_intervals() == [2, 4]
    assert deliver.max_attempts() == 3


@pytest.mark.django_db(transaction=True)
def test_worker_process_delivers_the_retry_after_a_503(metrics, now, http_receiver, redis_client, redis_url):
    arrivals: list[float] = []

    def status(n: int) -> int:
        arrivals.append(time.monotonic())
        return 503 if n == 1 else 200

    receiver = http_receiver(status=status)
    disable_seeded_rules()
    channel = Channel(name="flaky", kind="webhook", config={"url": receiver.url}, group_wait_seconds=0)
    channel.full_clean()
    channel.save()
    rule = AlertRule(
        name="cpu high", query={"metric": "cpu", "window": 60, "group_by": ["host"]}, threshold=80
    )
    rule.full_clean()
    rule.save()
    rule.channels.add(channel)
    metrics.gauge("cpu", now, 97.0, host="web-1")
    evaluate.evaluate_all(now)
    [note_id] = dispatch.dispatch_all(now)  # autocommit: the delivery job is enqueued at once
    assert get_queue(NOTIFICATIONS).count == 1

    worker = subprocess.Popen(
        [str(Path(sys.executable).parent / "fleetwatch-worker"), "--queues", "notifications"],
        env=worker_env(redis_url, NOTIFY_RETRY_INTERVALS="1,1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        receiver.wait(1, timeout=60)
        assert len(receiver.requests) >= 1, "the worker never made the first attempt"
        receiver.wait(2, timeout=10)  # a 1 s retry interval, the scheduler checks every second
        assert worker.poll() is None
    finally:
        worker.terminate()
        try:
            output = worker.communicate(timeout=20)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            worker.kill()
            output = worker.communicate()[0].decode(errors="replace")
    assert len(receiver.requests) == 2, output[-3000:]
    assert 0.9 <= arrivals[1] - arrivals[0] < 8, arrivals
    note = Notification.objects.get(pk=note_id)
    assert note.status == "sent" and note.attempts == 2
    attempts = DeliveryAttempt.objects.filter(notification=note).order_by("at")
    assert [a.ok for a in attempts] == [False, True]
    assert len({r.headers["Idempotency-Key"] for r in receiver.requests}) == 1
    assert ScheduledJobRegistry(queue=get_queue(NOTIFICATIONS)).count == 0


@pytest.mark.parametrize("bad", ["abc", "5,0", "5,-1", ","])
def test_bad_retry_intervals_stop_start_up_naming_the_variable(bad):
    done = subprocess.run(
        [sys.executable, "-c", "import collector_server.settings"],
        env={**os.environ, "NOTIFY_RETRY_INTERVALS": bad, "DEBUG": "true"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "NOTIFY_RETRY_INTERVALS" in done.stderr
