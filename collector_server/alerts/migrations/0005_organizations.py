"""Rules, channels, silences, alerts, routes and escalation policies belong to an organisation; existing ones to the default one.

Names of rules, channels and escalation policies, and the one-open-episode rule of alerts (per source), become unique per organisation;
the routing tree is one per organisation.
Events, notification groups, notifications and delivery attempts belong through their alert or channel.
"""

from __future__ import annotations

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


MODELS = ("AlertRule", "Channel", "Silence", "Alert", "Route", "EscalationPolicy")


def fill_default(apps, schema_editor):
    Organization = apps.get_model("orgs", "Organization")
    org, _ = Organization.objects.get_or_create(
        slug=settings.DEFAULT_ORGANIZATION, defaults={"name": settings.DEFAULT_ORGANIZATION}
    )
    for name in MODELS:
        apps.get_model("alerts", name)._base_manager.filter(organization__isnull=True).update(organization=org)


def db_default(apps, schema_editor):
    """Rows written by raw SQL that names no organisation go to the default one."""
    for name in MODELS:
        table = apps.get_model("alerts", name)._meta.db_table
        schema_editor.execute(f"ALTER TABLE {table} ALTER COLUMN organization_id SET DEFAULT fleetwatch_default_organization()")


def _fk(null: bool):
    return models.ForeignKey(
        null=null,
        blank=True,
        default=None,
        help_text="Empty: the organisation you act in.",
        on_delete=django.db.models.deletion.PROTECT,
        related_name="+",
        to="orgs.organization",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0004_alertmanager_routes_escalations"),
        ("orgs", "0001_initial"),
    ]

    operations = [
        *[migrations.AddField(model_name=m.lower(), name="organization", field=_fk(True)) for m in MODELS],
        migrations.RunPython(fill_default, migrations.RunPython.noop),
        *[migrations.AlterField(model_name=m.lower(), name="organization", field=_fk(False)) for m in MODELS],
        migrations.RunPython(db_default, migrations.RunPython.noop),
        migrations.AlterField(model_name="alertrule", name="name", field=models.CharField(max_length=200)),
        migrations.AlterField(model_name="channel", name="name", field=models.CharField(max_length=200)),
        migrations.AlterField(model_name="escalationpolicy", name="name", field=models.CharField(max_length=200)),
        migrations.AddConstraint(
            model_name="escalationpolicy",
            constraint=models.UniqueConstraint(fields=("organization", "name"), name="escalation_org_name_uniq"),
        ),
        migrations.AddConstraint(
            model_name="alertrule",
            constraint=models.UniqueConstraint(fields=("organization", "name"), name="rule_org_name_uniq"),
        ),
        migrations.AddConstraint(
            model_name="channel",
            constraint=models.UniqueConstraint(fields=("organization", "name"), name="channel_org_name_uniq"),
        ),
        migrations.RemoveConstraint(model_name="alert", name="alert_one_open_episode"),
        migrations.AddConstraint(
            model_name="alert",
            constraint=models.UniqueConstraint(
                condition=models.Q(("state__in", ["pending", "firing"])),
                fields=("organization", "source", "name", "labels_key"),
                name="alert_one_open_episode",
            ),
        ),
    ]
