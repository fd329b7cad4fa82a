"""Hosts and series belong to an organisation; existing ones to the default organisation.

Raw SQL inserts that name no organisation get the default one (a column default).
The organisation is on the series row, not on every sample: a sample stays (series_id, ts,
value), and every query reaches samples through series ids already chosen by organisation.
"""

from __future__ import annotations

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models



def fill_default(apps, schema_editor):
    Organization = apps.get_model("orgs", "Organization")
    org, _ = Organization.objects.get_or_create(
        slug=settings.DEFAULT_ORGANIZATION, defaults={"name": settings.DEFAULT_ORGANIZATION}
    )
    for name in ("Host", "Series"):
        apps.get_model("monitoring", name)._base_manager.filter(organization__isnull=True).update(organization=org)


def db_default(apps, schema_editor):
    """Rows written by raw SQL that names no organisation (COPY tools, older scripts) go to the default one."""
    for table in ("monitoring_host", "monitoring_series"):
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
        ("monitoring", "0002_partitioned_tables"),
        ("orgs", "0001_initial"),
    ]

    operations = [
        migrations.AddField(model_name="host", name="organization", field=_fk(True)),
        migrations.AddField(model_name="series", name="organization", field=_fk(True)),
        migrations.RunPython(fill_default, migrations.RunPython.noop),
        migrations.AlterField(model_name="host", name="organization", field=_fk(False)),
        migrations.AlterField(model_name="series", name="organization", field=_fk(False)),
        migrations.RunPython(db_default, migrations.RunPython.noop),
        migrations.RemoveConstraint(model_name="series", name="series_name_labels_uniq"),
        migrations.AddConstraint(
            model_name="series",
            constraint=models.UniqueConstraint(
                fields=("organization", "name", "labels_key"), name="series_org_name_labels_uniq"
            ),
        ),
    ]
