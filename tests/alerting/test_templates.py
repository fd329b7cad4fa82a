"""Annotation and label templates: every placeholder filled on its own, "no data" for a missing value."""

from __future__ import annotations

from datetime import timedelta

import pytest

from alerting_worker.alerting import evaluate
from alerting_worker.alerting.evaluate import render
from collector_server.alerts.models import Alert, AlertRule
from tests.alerting.conftest import disable_seeded_rules


@pytest.mark.parametrize(
    ("template", "value", "expected"),
    [
        ("CPU on {host} is {value:.1f}%", 97.04, "CPU on web-1 is 97.0%"),
        ("CPU on {host} is {value:.1f}%", None, "CPU on web-1 is no data%"),
        ("{host}: {value}", None, "web-1: no data"),
        ("{host}: {value:>10.3e} / {value!r}", None, "web-1: no data / no data"),
        ("{host} {unknown} {value:.0f}", 3.6, "web-1 {unknown} 4"),
        ("{host} {unknown:.2f} {value:.0f}", None, "web-1 {unknown:.2f} no data"),
        ("{{literal}} {host}", 1.0, "{literal} web-1"),
        ("{host:.1f} on {host}", 1.0, "web-1 on web-1"),  # a spec that does not fit the value
        ("{value:%} {host}", 0.5, "50.000000% web-1"),
        ("{host.__class__} {host[0]} {0} {host}", 1.0, "{host.__class__} {host[0]} {0} web-1"),
        ("unbalanced { {host} {value:.1f}", None, "unbalanced { web-1 no data"),
        ("unbalanced {host} {value:.1f} }", 2.25, "unbalanced web-1 2.2 }"),
    ],
)
def test_render(template, value, expected):
    assert render(template, {"host": "web-1"}, value) == expected


def test_a_label_named_value_does_not_hide_the_value():
    assert render("{value}", {"value": "label"}, None) == "no data"


def test_no_data_alert_summary_names_the_host(db, metrics, now):
    disable_seeded_rules()
    rule = AlertRule(
        name="cpu silent",
        query={"metric": "cpu", "aggregation": "avg", "window": 60, "group_by": ["host"]},
        threshold=80,
        nodata_policy="alert",
        nodata_timeout_seconds=120,
        annotations={"summary": "CPU on {host} is {value:.1f}%", "description": "{host}: {nope}"},
    )
    rule.full_clean()
    rule.save()
    metrics.gauge("cpu", now, 50, host="a")  # then the host goes silent
    evaluate.evaluate_all(now)
    evaluate.evaluate_all(now + timedelta(minutes=5))
    alert = Alert.objects.get(rule=rule)
    assert alert.state == "firing" and alert.value is None
    assert alert.summary == "CPU on a is no data%"
    assert alert.description == "a: {nope}"
