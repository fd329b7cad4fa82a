"""A rule's repeat interval is optional: blank inherits the channel's, then ALERT_COOLDOWN_PERIOD.

The default rules created by 0002 carried a hard-coded 1800 s that overrode every channel and the
setting; it is cleared on those that still have it (a value an operator changed is kept).
A channel's repeat interval may be blank too (the setting applies, as it is set now).
"""

from __future__ import annotations

from django.db import migrations, models

OLD_COOLDOWN = 1800  # what 0002 stored on the default rules
DEFAULT_RULE_NAMES = [
    "High CPU Usage",
    "Critical Memory Usage",
    "High API Error Rate",
    "Slow Response Times",
    "Low Disk Space",
    "System Unavailability",
    "Host Down",
]


def inherit(apps, schema_editor):
    AlertRule = apps.get_model("alerts", "AlertRule")
    AlertRule.objects.filter(name__in=DEFAULT_RULE_NAMES, repeat_interval_seconds=OLD_COOLDOWN).update(
        repeat_interval_seconds=None
    )


def hard_code(apps, schema_editor):
    AlertRule = apps.get_model("alerts", "AlertRule")
    AlertRule.objects.filter(name__in=DEFAULT_RULE_NAMES, repeat_interval_seconds__isnull=True).update(
        repeat_interval_seconds=OLD_COOLDOWN
    )
    Channel = apps.get_model("alerts", "Channel")
    Channel.objects.filter(repeat_interval_seconds__isnull=True).update(repeat_interval_seconds=4 * 3600)


class Migration(migrations.Migration):
    dependencies = [("alerts", "0002_default_rules")]

    operations = [
        migrations.AlterField(
            model_name="alertrule",
            name="repeat_interval_seconds",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="Overrides the channel's repeat interval; blank: the channel's (then ALERT_COOLDOWN_PERIOD).",
                null=True,
            ),
        ),
        migrations.AlterField(
            model_name="channel",
            name="repeat_interval_seconds",
            field=models.PositiveIntegerField(
                blank=True,
                default=14400,
                help_text="Blank: the ALERT_COOLDOWN_PERIOD setting (4 h when that is 0).",
                null=True,
            ),
        ),
        migrations.RunPython(inherit, hard_code),
    ]
