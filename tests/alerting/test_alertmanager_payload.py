"""fleetwatch's webhook payload as Alertmanager's: a receiver that parses it strictly accepts it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from alerting_worker.alerting import payloads
from collector_server.alerts.fingerprint import group_key, label_fingerprint
from tests.alerting.test_delivery import dispatch_and_work, fire, make_channel, resolve

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
GROUP_KEY = re.compile(r'^\{.*\}:\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"(, )?)*\}$')
ZERO = "0001-01-01T00:00:00Z"


def rfc3339(text: str) -> datetime:
    """Parse as Go's time.Parse(time.RFC3339Nano, …) would: refuse anything else."""
    assert RFC3339.match(text), f"not RFC 3339: {text!r}"
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def strict_receiver_accepts(body: dict) -> None:
    """Check the fields and types Alertmanager's webhook (template.Data, version 4) has."""
    expected = {
        "version",
        "groupKey",
        "truncatedAlerts",
        "status",
        "receiver",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "alerts",
    }
    assert expected <= set(body), expected - set(body)
    assert body["version"] == "4" and body["status"] in ("firing", "resolved")
    assert isinstance(body["truncatedAlerts"], int)
    assert GROUP_KEY.match(body["groupKey"]), body["groupKey"]
    for name in ("groupLabels", "commonLabels", "commonAnnotations"):
        assert all(isinstance(v, str) for v in body[name].values())
    for alert in body["alerts"]:
        assert alert["status"] in ("firing", "resolved")
        starts, ends = rfc3339(alert["startsAt"]), rfc3339(alert["endsAt"])
        if alert["status"] == "firing":
            assert alert["endsAt"] == ZERO
        else:
            assert ends >= starts
        assert HEX16.match(alert["fingerprint"]), alert["fingerprint"]
        assert alert["fingerprint"] == label_fingerprint(alert["labels"])
        assert alert["generatorURL"].startswith(body["externalURL"] + "/")


def test_fingerprint_is_prometheus_label_set_fingerprint():
    # Values computed by github.com/prometheus/common/model LabelSet.Fingerprint().
    assert label_fingerprint({}) == "cbf29ce484222325"
    assert HEX16.match(label_fingerprint({"alertname": "X", "host": "web-1"}))
    assert label_fingerprint({"b": "1", "a": "2"}) == label_fingerprint({"a": "2", "b": "1"})
    assert label_fingerprint({"a": "b"}) != label_fingerprint({"ab": ""})


def test_group_key_is_alertmanagers():
    assert group_key({"alertname": "X"}) == '{}:{alertname="X"}'
    assert group_key({"host": 'a"b', "alertname": "X"}) == '{}:{alertname="X", host="a\\"b"}'


@pytest.mark.django_db
def test_strict_receiver_accepts_firing_and_resolved_payloads(
    metrics, now, http_receiver, redis_client, django_capture_on_commit_callbacks, settings
):
    settings.ALERT_EXTERNAL_URL = "https://monitoring.example.com"
    receiver = http_receiver()
    channel = make_channel("am", "webhook", {"url": receiver.url + "/alerts"})
    fire(metrics, now, channel)
    dispatch_and_work(redis_client, django_capture_on_commit_callbacks, now)
    firing = receiver.wait(1)[0].body
    strict_receiver_accepts(firing)
    assert firing["externalURL"] == "https://monitoring.example.com"
    assert firing["groupKey"] == '{}:{alertname="cpu high"}'
    assert firing["alerts"][0]["endsAt"] == ZERO

    later = now + timedelta(minutes=6)
    resolve(metrics, later)
    dispatch_and_work(redis_client, django_capture_on_commit_callbacks, later)
    resolved = receiver.wait(2)[1].body
    strict_receiver_accepts(resolved)
    assert resolved["status"] == "resolved"
    assert resolved["alerts"][0]["fingerprint"] == firing["alerts"][0]["fingerprint"]
    assert rfc3339(resolved["alerts"][0]["endsAt"]) == later


@pytest.mark.django_db
def test_test_notification_payload_is_strictly_valid(now, settings):
    from collector_server.alerts.models import Channel

    settings.ALERT_EXTERNAL_URL = "http://fw.internal:8000"
    channel = Channel.objects.create(name="t", kind="webhook", config={"url": "http://127.0.0.1:9/x"})
    strict_receiver_accepts(payloads.test_payload(channel, now))


def test_external_url_is_read_from_the_environment():
    code = (
        "import django; django.setup(); from alerting_worker.alerting import payloads; "
        "print(payloads.external_url())"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "collector_server.settings",
        "ALERT_EXTERNAL_URL": "https://fw.example.org/",
        "DEBUG": "true",
    }
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "https://fw.example.org"
    env["ALERT_EXTERNAL_URL"] = "fw.example.org"
    bad = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "ALERT_EXTERNAL_URL" in bad.stderr
