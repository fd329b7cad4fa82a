"""fleetwatch-manage add-member USERNAME ORG ROLE: create what is missing and print a new API token."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from collector_server.orgs import roles
from collector_server.orgs.models import ApiToken, Membership, Organization


class Command(BaseCommand):
    help = (
        "Make USERNAME a member of organisation ORG with ROLE (viewer, operator, admin), creating the "
        "organisation and the user when missing, and print 'token: <key>', a new API token of that "
        "organisation and role (shown once)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("organization", help="organisation slug")
        parser.add_argument("role", choices=roles.ROLES)
        parser.add_argument("--token-name", default="add-member")

    def handle(self, *args, username: str, organization: str, role: str, token_name: str, **options) -> None:
        if not organization.replace("-", "").replace("_", "").isalnum():
            raise CommandError(f"organisation {organization!r} must be a slug (letters, digits, - and _)")
        with transaction.atomic():
            org, org_created = Organization.objects.get_or_create(
                slug=organization, defaults={"name": organization}
            )
            users = get_user_model()
            user = users.objects.filter(username=username).first()
            password = None
            if user is None:
                password = secrets.token_urlsafe(12)
                # Staff, so the member can log in to the admin; what it sees there is its role's.
                user = users.objects.create_user(username=username, password=password, is_staff=True)
            member = Membership.all_objects.filter(user=user, organization=org).first()
            if member is None:
                Membership.all_objects.create(user=user, organization=org, role=role)
            elif member.role != role:
                member.role = role
                member.save(update_fields=["role"])
            _, key = ApiToken.issue(user, org, name=token_name, role=role)
        if org_created:
            self.stdout.write(f"organisation {organization} created")
        if password is not None:
            self.stdout.write(f"user {username} created, password: {password}")
        self.stdout.write(f"{username} is {role} of {organization}")
        self.stdout.write(f"token: {key}")
