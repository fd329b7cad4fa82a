"""Organisations, memberships, hashed API tokens and audit events; the default organisation.

Existing users become members of the default organisation (staff and superusers as admin,
others as viewer), and existing DRF tokens (stored in clear) become hashed API tokens of the
same key with that role; the clear keys are then deleted from authtoken_token.
"""

from __future__ import annotations

import hashlib

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def create_default(apps, schema_editor):
    Organization = apps.get_model("orgs", "Organization")
    Membership = apps.get_model("orgs", "Membership")
    ApiToken = apps.get_model("orgs", "ApiToken")
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    slug = settings.DEFAULT_ORGANIZATION
    org, _ = Organization.objects.get_or_create(slug=slug, defaults={"name": slug})
    role_of = {}
    for user in User.objects.all():
        role = "admin" if (user.is_staff or user.is_superuser) else "viewer"
        Membership.objects.get_or_create(user=user, organization=org, defaults={"role": role})
        role_of[user.pk] = role
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('authtoken_token') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return
        cursor.execute("SELECT key, user_id, created FROM authtoken_token")
        for key, user_id, created in cursor.fetchall():
            ApiToken.objects.create(
                user_id=user_id,
                organization=org,
                name="migrated",
                role=role_of.get(user_id, "viewer"),
                prefix=key[:10],
                key_hash=hashlib.sha256(key.encode()).hexdigest(),
                created_at=created,
            )
        cursor.execute("DELETE FROM authtoken_token")


DEFAULT_FUNCTION = """
CREATE OR REPLACE FUNCTION fleetwatch_default_organization(wanted text DEFAULT '{slug}')
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE found bigint;
BEGIN
    SELECT id INTO found FROM orgs_organization WHERE slug = wanted;
    IF found IS NULL THEN
        INSERT INTO orgs_organization (slug, name, created_at) VALUES (wanted, wanted, now())
        ON CONFLICT (slug) DO NOTHING RETURNING id INTO found;
        IF found IS NULL THEN
            SELECT id INTO found FROM orgs_organization WHERE slug = wanted;
        END IF;
    END IF;
    RETURN found;
END $$;
"""


def create_default_function(apps, schema_editor):
    """The column default of organisation ids: rows inserted by raw SQL that name none go to the default."""
    slug = settings.DEFAULT_ORGANIZATION  # a slug (checked in settings): safe inside the quotes
    schema_editor.execute(DEFAULT_FUNCTION.format(slug=slug))


def drop_default_function(apps, schema_editor):
    schema_editor.execute("DROP FUNCTION IF EXISTS fleetwatch_default_organization(text)")


class Migration(migrations.Migration):
    initial = True

    dependencies = [migrations.swappable_dependency(settings.AUTH_USER_MODEL)]

    operations = [
        migrations.CreateModel(
            name="Organization",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("slug", models.SlugField(max_length=100, unique=True)),
                ("name", models.CharField(blank=True, max_length=200)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={"ordering": ["slug"], "verbose_name": "organisation"},
        ),
        migrations.CreateModel(
            name="Membership",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "role",
                    models.CharField(
                        choices=[("viewer", "viewer"), ("operator", "operator"), ("admin", "admin")],
                        default="viewer",
                        max_length=10,
                    ),
                ),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "organization",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="memberships", to="orgs.organization"
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="memberships",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["organization__slug", "user__username"],
                "constraints": [
                    models.UniqueConstraint(fields=("user", "organization"), name="membership_user_org_uniq")
                ],
            },
        ),
        migrations.CreateModel(
            name="ApiToken",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=100)),
                (
                    "role",
                    models.CharField(
                        choices=[("viewer", "viewer"), ("operator", "operator"), ("admin", "admin")],
                        default="viewer",
                        help_text="The most this token may do; never more than the user's role in the organisation.",
                        max_length=10,
                    ),
                ),
                ("prefix", models.CharField(editable=False, help_text="The key's first characters.", max_length=16)),
                ("key_hash", models.CharField(editable=False, max_length=64, unique=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("expires_at", models.DateTimeField(blank=True, null=True)),
                ("last_used_at", models.DateTimeField(blank=True, null=True)),
                ("revoked_at", models.DateTimeField(blank=True, null=True)),
                (
                    "organization",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="api_tokens", to="orgs.organization"
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="api_tokens",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={"ordering": ["-created_at"], "verbose_name": "API token"},
        ),
        migrations.CreateModel(
            name="AuditEvent",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ("actor_name", models.CharField(blank=True, help_text="Kept when the user is deleted.", max_length=150)),
                ("action", models.CharField(db_index=True, max_length=30)),
                ("object_type", models.CharField(db_index=True, help_text="app_label.model", max_length=100)),
                ("object_id", models.CharField(blank=True, max_length=64)),
                ("object_repr", models.CharField(blank=True, max_length=200)),
                (
                    "changes",
                    models.JSONField(blank=True, default=dict, help_text='{"field": [before, after]}, secrets masked.'),
                ),
                (
                    "actor",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "organization",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="audit_events",
                        to="orgs.organization",
                    ),
                ),
            ],
            options={
                "ordering": ["-at", "-id"],
                "verbose_name": "audit event",
                "indexes": [models.Index(fields=["organization", "-at"], name="audit_org_at_idx")],
            },
        ),
        migrations.RunPython(create_default, migrations.RunPython.noop),
        migrations.RunPython(create_default_function, drop_default_function),
    ]
