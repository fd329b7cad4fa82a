"""Log records carry their organisation in a 4-byte integer column (no foreign key on the partitioned table).

Added with a constant default, which PostgreSQL (11+) records in the catalogue without
rewriting the table, so existing partitions of any size take no time; existing records thus
belong to the default organisation. Ingest writes the column explicitly. No index: searches
are bounded by time (and host, level, words...) first, and one more index on the hottest
insert path would cost more than it saves while most installs hold one organisation.
"""

from __future__ import annotations

from django.conf import settings
from django.db import migrations


def add_column(apps, schema_editor):
    Organization = apps.get_model("orgs", "Organization")
    org, _ = Organization.objects.get_or_create(
        slug=settings.DEFAULT_ORGANIZATION, defaults={"name": settings.DEFAULT_ORGANIZATION}
    )
    schema_editor.execute(
        f"ALTER TABLE logs_entry ADD COLUMN IF NOT EXISTS organization_id integer NOT NULL DEFAULT {int(org.pk)}"
    )
    # Later raw inserts that name no organisation: the default organisation, looked up (or created) when
    # inserted. Changing the default after the column exists rewrites nothing.
    schema_editor.execute(
        "ALTER TABLE logs_entry ALTER COLUMN organization_id SET DEFAULT fleetwatch_default_organization()"
    )


def drop_column(apps, schema_editor):
    schema_editor.execute("ALTER TABLE logs_entry DROP COLUMN IF EXISTS organization_id")


class Migration(migrations.Migration):
    dependencies = [
        ("logs", "0002_drop_fulltext_index"),
        ("orgs", "0001_initial"),
    ]

    operations = [migrations.RunPython(add_column, drop_column)]
