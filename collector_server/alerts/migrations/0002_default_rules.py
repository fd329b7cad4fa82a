"""Create the seed documents' default alert rules (editable afterwards)."""

from __future__ import annotations

from django.db import migrations

from collector_server.alerts.defaults import COOLDOWN, DEFAULT_RULES


def create_rules(apps, schema_editor):
    AlertRule = apps.get_model("alerts", "AlertRule")
    for spec in DEFAULT_RULES:
        AlertRule.objects.get_or_create(name=spec["name"], defaults={**spec, "repeat_interval_seconds": COOLDOWN})


def remove_rules(apps, schema_editor):
    AlertRule = apps.get_model("alerts", "AlertRule")
    AlertRule.objects.filter(name__in=[spec["name"] for spec in DEFAULT_RULES]).delete()


class Migration(migrations.Migration):
    dependencies = [("alerts", "0001_initial")]

    operations = [migrations.RunPython(create_rules, remove_rules)]
