"""Create the seed documents' default alert rules (editable afterwards).

The rules are frozen here as they were when this migration was written, so that editing
``collector_server.alerts.defaults.DEFAULT_RULES`` later never changes what it did.
0003 clears their ``repeat_interval_seconds`` (they inherit the channel's, then ALERT_COOLDOWN_PERIOD).
"""

from __future__ import annotations

from django.db import migrations

COOLDOWN = 1800  # the seeds' 30-minute cooldown, as this migration stored it

DEFAULT_RULES = [
    {
        "name": "High CPU Usage",
        "description": "CPU usage is consistently high",
        "severity": "high",
        "query_type": "metric",
        "query": {
            "metric": "system_cpu_usage_percent",
            "matchers": [{"name": "core", "op": "=", "value": ""}],
            "aggregation": "avg",
            "window": 60,
            "group_by": ["host"],
        },
        "comparison": ">",
        "threshold": 80,
        "for_seconds": 300,
        "annotations": {"summary": "CPU on {host} is {value:.1f}%"},
    },
    {
        "name": "Critical Memory Usage",
        "description": "Memory usage is critically high",
        "severity": "critical",
        "query_type": "metric",
        "query": {
            "metric": "system_memory_usage_percent",
            "matchers": [],
            "aggregation": "avg",
            "window": 60,
            "group_by": ["host"],
        },
        "comparison": ">",
        "threshold": 90,
        "for_seconds": 180,
        "annotations": {"summary": "Memory on {host} is {value:.1f}%"},
    },
    {
        "name": "High API Error Rate",
        "description": "More than 10% of API requests fail",
        "severity": "high",
        "query_type": "ratio",
        "query": {
            "numerator": {
                "metric": "http_request_errors_total",
                "matchers": [],
                "aggregation": "increase",
                "window": 300,
                "group_by": [],
            },
            "denominator": {
                "metric": "http_requests_total",
                "matchers": [],
                "aggregation": "increase",
                "window": 300,
                "group_by": [],
            },
            "scale": 100,
            "group_by": ["service"],
        },
        "comparison": ">",
        "threshold": 10,
        "for_seconds": 300,
        "nodata_policy": "ok",
        "annotations": {"summary": "Error rate of {service} is {value:.1f}%"},
    },
    {
        "name": "Slow Response Times",
        "description": "Average response time above 5 seconds",
        "severity": "medium",
        "query_type": "ratio",
        "query": {
            "numerator": {
                "metric": "http_request_duration_seconds_sum",
                "matchers": [],
                "aggregation": "increase",
                "window": 300,
                "group_by": [],
            },
            "denominator": {
                "metric": "http_request_duration_seconds_count",
                "matchers": [],
                "aggregation": "increase",
                "window": 300,
                "group_by": [],
            },
            "scale": 1,
            "group_by": ["service"],
        },
        "comparison": ">",
        "threshold": 5,
        "for_seconds": 600,
        "nodata_policy": "ok",
        "annotations": {"summary": "Average response time of {service} is {value:.2f}s"},
    },
    {
        "name": "Low Disk Space",
        "description": "Disk usage above 85%",
        "severity": "high",
        "query_type": "metric",
        "query": {
            "metric": "system_disk_usage_percent",
            "matchers": [],
            "aggregation": "avg",
            "window": 60,
            "group_by": ["host", "mountpoint"],
        },
        "comparison": ">",
        "threshold": 85,
        "for_seconds": 300,
        "annotations": {"summary": "Disk {mountpoint} on {host} is {value:.1f}% full"},
    },
    {
        "name": "System Unavailability",
        "description": "No requests for 15 minutes",
        "severity": "critical",
        "query_type": "metric",
        "query": {
            "metric": "http_requests_total",
            "matchers": [],
            "aggregation": "increase",
            "window": 900,
            "group_by": ["service"],
        },
        "comparison": "<=",
        "threshold": 0,
        "for_seconds": 0,
        "nodata_policy": "alert",
        "nodata_timeout_seconds": 900,
        "annotations": {"summary": "{service} has served no requests for 15 minutes"},
    },
    {
        "name": "Host Down",
        "description": "No data from an agent for 2 minutes",
        "severity": "critical",
        "query_type": "host_down",
        "query": {"matchers": []},
        "comparison": ">",
        "threshold": 120,
        "for_seconds": 0,
        "annotations": {"summary": "No data from {host} for {value:.0f}s"},
    },
]


def create_rules(apps, schema_editor):
    AlertRule = apps.get_model("alerts", "AlertRule")
    for spec in DEFAULT_RULES:
        AlertRule.objects.get_or_create(
            name=spec["name"], defaults={**spec, "repeat_interval_seconds": COOLDOWN}
        )


def remove_rules(apps, schema_editor):
    AlertRule = apps.get_model("alerts", "AlertRule")
    AlertRule.objects.filter(name__in=[spec["name"] for spec in DEFAULT_RULES]).delete()


class Migration(migrations.Migration):
    dependencies = [("alerts", "0001_initial")]

    operations = [migrations.RunPython(create_rules, remove_rules)]
