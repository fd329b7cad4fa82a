"""Rule validation (shared by admin and API) and the default rules from the seed documents."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from collector_server.alerts.models import AlertRule

pytestmark = pytest.mark.django_db


def make_rule(**overrides) -> AlertRule:
    fields = {
        "name": "cpu",
        "query_type": "metric",
        "query": {
            "metric": "system_cpu_usage_percent",
            "aggregation": "avg",
            "window": 60,
            "group_by": ["host"],
        },
        "comparison": ">",
        "threshold": 80,
    }
    fields.update(overrides)
    return AlertRule(**fields)


def errors_of(rule: AlertRule) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as info:
        rule.full_clean()
    return info.value.message_dict


def test_valid_rule_passes_and_is_normalized():
    rule = make_rule(query={"metric": "m", "matchers": {"mountpoint": "/"}})
    rule.full_clean()
    assert rule.query["matchers"] == [{"name": "mountpoint", "op": "=", "value": "/"}]
    assert rule.query["aggregation"] == "avg" and rule.query["window"] == 300


def test_unknown_aggregation_is_rejected_naming_the_query_field():
    errors = errors_of(make_rule(query={"metric": "m", "aggregation": "median"}))
    assert "query" in errors and "median" in errors["query"][0]


def test_unknown_query_type_is_rejected_naming_query_type():
    errors = errors_of(make_rule(query_type="sql"))
    assert "query_type" in errors and "sql" in errors["query_type"][0]


def test_recovery_threshold_on_the_breaching_side_is_rejected():
    errors = errors_of(make_rule(threshold=80, recovery_threshold=90))
    assert "recovery_threshold" in errors


def test_recovery_threshold_below_an_upper_threshold_is_accepted():
    make_rule(threshold=80, recovery_threshold=70).full_clean()


def test_recovery_threshold_for_a_lower_bound_rule_must_be_above_it():
    errors = errors_of(make_rule(comparison="<", threshold=10, recovery_threshold=5))
    assert "recovery_threshold" in errors


def test_for_shorter_than_the_evaluation_interval_is_rejected(settings):
    settings.ALERT_CHECK_INTERVAL = 15
    errors = errors_of(make_rule(for_seconds=5))
    assert "for_seconds" in errors and "15s" in errors["for_seconds"][0]


def test_bad_regex_matcher_is_rejected_with_its_position():
    errors = errors_of(
        make_rule(query={"metric": "m", "matchers": [{"name": "host", "op": "=~", "value": "("}]})
    )
    assert "matcher #1" in errors["query"][0]


def test_ratio_query_names_the_bad_side():
    query = {"numerator": {"metric": "a", "aggregation": "increase"}, "denominator": {"aggregation": "sum"}}
    errors = errors_of(make_rule(query_type="ratio", query=query))
    assert errors["query"][0].startswith("denominator: metric is required")


def test_annotation_template_with_an_expression_is_rejected():
    errors = errors_of(make_rule(annotations={"summary": "{host.__class__}"}))
    assert "annotations" in errors


def test_default_rules_from_the_seeds_exist_and_are_valid():
    rules = {r.name: r for r in AlertRule.objects.all()}
    expected = {
        "High CPU Usage": ("high", 80, 300),
        "Critical Memory Usage": ("critical", 90, 180),
        "High API Error Rate": ("high", 10, 300),
        "Slow Response Times": ("medium", 5, 600),
        "Low Disk Space": ("high", 85, 300),
        "System Unavailability": ("critical", 0, 0),
        "Host Down": ("critical", 120, 0),
    }
    for name, (severity, threshold, for_seconds) in expected.items():
        rule = rules[name]
        assert (rule.severity, rule.threshold, rule.for_seconds) == (severity, threshold, for_seconds), name
        rule.full_clean()


def test_default_rules_are_editable():
    rule = AlertRule.objects.get(name="High CPU Usage")
    rule.threshold = 95
    rule.full_clean()
    rule.save()
    assert AlertRule.objects.get(name="High CPU Usage").threshold == 95
