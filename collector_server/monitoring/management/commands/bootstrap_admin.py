"""Create the first admin account and an API token (idempotent: a token is printed only when created)."""

from __future__ import annotations

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from collector_server.orgs import roles
from collector_server.orgs.models import ApiToken, Membership, Organization
from collector_server.orgs.scope import default_organization_id

TOKEN_NAME = "bootstrap"


class Command(BaseCommand):
    help = (
        "Create an admin user (FLEETWATCH_ADMIN_USER/FLEETWATCH_ADMIN_PASSWORD), an admin of the default "
        "organisation, and an API token; the token is printed only when one is created (keys are stored hashed)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default=os.environ.get("FLEETWATCH_ADMIN_USER", "admin"))
        parser.add_argument("--password", default=os.environ.get("FLEETWATCH_ADMIN_PASSWORD", ""))
        parser.add_argument("--email", default=os.environ.get("FLEETWATCH_ADMIN_EMAIL", ""))
        parser.add_argument("--new-token", action="store_true", help="issue a new token even if one exists")

    def handle(self, *args, username: str, password: str, email: str, new_token: bool, **options) -> None:
        users = get_user_model()
        user = users.objects.filter(username=username).first()
        created = user is None
        if created:
            password = password or secrets.token_urlsafe(12)
            user = users.objects.create_superuser(username=username, email=email, password=password)
        org = Organization.objects.get(pk=default_organization_id())
        Membership.all_objects.get_or_create(user=user, organization=org, defaults={"role": roles.ADMIN})
        if created:
            self.stdout.write(f"admin user: {username}")
            self.stdout.write(f"admin password: {password}")
        else:
            self.stdout.write(f"admin user {username} exists (password unchanged)")
        active = ApiToken.all_objects.filter(user=user, name=TOKEN_NAME, revoked_at__isnull=True).exists()
        if created or new_token or not active:
            _, key = ApiToken.issue(user, org, name=TOKEN_NAME, role=roles.ADMIN)
            self.stdout.write(f"api token: {key}")
        else:
            self.stdout.write("api token: unchanged (kept hashed; issue another with --new-token)")
