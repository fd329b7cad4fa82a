"""Enrollments belong to an organisation (existing ones to the default one): a host enrolled
there is stored there (orgs.scope.organisations_for_agents)."""

from __future__ import annotations

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def fill_default(apps, schema_editor):
    Organization = apps.get_model("orgs", "Organization")
    org, _ = Organization.objects.get_or_create(
        slug=settings.DEFAULT_ORGANIZATION, defaults={"name": settings.DEFAULT_ORGANIZATION}
    )
    apps.get_model("enrollments", "Enrollment")._base_manager.filter(organization__isnull=True).update(
        organization=org
    )


def db_default(apps, schema_editor):
    schema_editor.execute(
        "ALTER TABLE enrollments_enrollment ALTER COLUMN organization_id SET DEFAULT fleetwatch_default_organization()"
    )


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
        ("enrollments", "0001_initial"),
        ("orgs", "0001_initial"),
    ]

    operations = [
        migrations.AddField(model_name="enrollment", name="organization", field=_fk(True)),
        migrations.RunPython(fill_default, migrations.RunPython.noop),
        migrations.AlterField(model_name="enrollment", name="organization", field=_fk(False)),
        migrations.RunPython(db_default, migrations.RunPython.noop),
    ]
