"""The rule form's "Preview (evaluate now)": validate and evaluate the rule as edited, save nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.test import Client

from collector_server.alerts.models import AlertRule

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/alerts/alertrule/add/"
PREVIEW_BUTTON = '<input type="submit" value="Preview (evaluate now)" name="_preview"'


@pytest.fixture
def operator(db) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("operator", "ops@example.com", "pw-operator-1"))
    return client


def rule_form(**overrides: Any) -> dict[str, str]:
    """The add form as an operator fills it in: CPU above 80 % per host, no pending period."""
    form = {
        "name": "cpu above 80 per host",
        "severity": "high",
        "enabled": "on",
        "query_type": "metric",
        "query": '{"metric": "preview_cpu_percent", "aggregation": "avg", "window": 300, "group_by": ["host"]}',
        "comparison": ">",
        "threshold": "80",
        "for_seconds": "0",
        "keep_firing_for_seconds": "0",
        "nodata_policy": "keep",
        "nodata_timeout_seconds": "300",
        "labels": "{}",
        "annotations": "{}",
        "created_at_0": "2026-01-01",
        "created_at_1": "00:00:00",
    }
    form.update(overrides)
    return form


def preview_section(page: str) -> str:
    start = page.index('id="rule-preview"')
    return page[start : page.index("</div>", start)]


def test_rule_form_offers_the_preview_button_on_add_and_change(operator):
    rule = AlertRule.objects.get(name="High CPU Usage")
    assert PREVIEW_BUTTON in operator.get(ADD_URL).content.decode()
    assert PREVIEW_BUTTON in operator.get(f"/admin/alerts/alertrule/{rule.pk}/change/").content.decode()


def test_preview_of_an_unsaved_rule_shows_each_group_and_saves_nothing(operator, metrics):
    metrics.gauge("preview_cpu_percent", datetime.now(UTC), 93.5, host="web-7")
    metrics.gauge("preview_cpu_percent", datetime.now(UTC), 12.0, host="web-8")
    rules_before, log_before = AlertRule.objects.count(), LogEntry.objects.count()

    response = operator.post(ADD_URL, {**rule_form(), "_preview": "Preview (evaluate now)"})

    assert response.status_code == 200  # the form again, not a redirect after a save
    section = preview_section(response.content.decode())
    assert "<tr><td>host=web-7</td><td>93.5</td><td>would fire</td></tr>" in section
    assert "<tr><td>host=web-8</td><td>12</td><td>ok</td></tr>" in section
    assert AlertRule.objects.count() == rules_before
    assert not AlertRule.objects.filter(name="cpu above 80 per host").exists()
    assert LogEntry.objects.count() == log_before  # no "added" entry in the admin history either
    assert 'value="cpu above 80 per host"' in response.content.decode()  # the form keeps what was typed


def test_preview_tells_a_pending_period_and_groups_without_data(operator, metrics):
    now = datetime.now(UTC)
    metrics.gauge("preview_cpu_percent", now, 95.0, host="web-1")
    metrics.series("preview_cpu_percent", host="web-2")  # a known series with no samples in the window
    form = rule_form(for_seconds="300")

    page = operator.post(ADD_URL, {**form, "_preview": "1"}).content.decode()

    section = preview_section(page)
    assert "<tr><td>host=web-1</td><td>95</td><td>would fire after 300s pending</td></tr>" in section
    assert "<tr><td>host=web-2</td><td>no data</td><td>no data</td></tr>" in section


def test_preview_of_a_rule_matching_nothing_says_so(operator):
    form = rule_form(query='{"metric": "no_such_metric", "group_by": ["host"]}')
    page = operator.post(ADD_URL, {**form, "_preview": "1"}).content.decode()
    assert '<td colspan="3">no matching series</td>' in preview_section(page)


def test_preview_of_an_invalid_rule_shows_the_field_error_and_no_preview(operator):
    form = rule_form(query='{"metric": "preview_cpu_percent", "aggregation": "median"}')
    response = operator.post(ADD_URL, {**form, "_preview": "1"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "unknown aggregation &#x27;median&#x27;" in page  # AlertRule.clean(), as on save
    assert 'id="rule-preview"' not in page
    assert not AlertRule.objects.filter(name="cpu above 80 per host").exists()


def test_preview_of_a_bad_recovery_threshold_names_that_field(operator):
    response = operator.post(ADD_URL, {**rule_form(recovery_threshold="95"), "_preview": "1"})
    page = response.content.decode()
    assert "must be on the healthy side of the threshold" in page
    assert "errors field-recovery_threshold" in page  # shown on the field, not only at the top


def test_preview_on_the_change_form_evaluates_the_edit_and_keeps_the_saved_rule(operator, metrics):
    metrics.gauge("preview_cpu_percent", datetime.now(UTC), 50.0, host="db-1")
    create = operator.post(ADD_URL, rule_form())
    rule = AlertRule.objects.get(name="cpu above 80 per host")
    assert create.status_code == 302

    edited = rule_form(threshold="40")
    response = operator.post(f"/admin/alerts/alertrule/{rule.pk}/change/", {**edited, "_preview": "1"})

    section = preview_section(response.content.decode())
    assert "<tr><td>host=db-1</td><td>50</td><td>would fire</td></tr>" in section
    rule.refresh_from_db()
    assert rule.threshold == 80.0  # the stored rule is unchanged


def test_saving_the_form_without_preview_still_saves_the_rule(operator):
    response = operator.post(ADD_URL, rule_form())
    assert response.status_code == 302
    rule = AlertRule.objects.get(name="cpu above 80 per host")
    assert rule.threshold == 80.0 and rule.query["group_by"] == ["host"]
