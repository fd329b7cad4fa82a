"""Create the first admin account and an API token (idempotent)."""

from __future__ import annotations

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = "Create an admin user (FLEETWATCH_ADMIN_USER/FLEETWATCH_ADMIN_PASSWORD) and print its API token."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default=os.environ.get("FLEETWATCH_ADMIN_USER", "admin"))
        parser.add_argument("--password", default=os.environ.get("FLEETWATCH_ADMIN_PASSWORD", ""))
        parser.add_argument("--email", default=os.environ.get("FLEETWATCH_ADMIN_EMAIL", ""))

    def handle(self, *args, username: str, password: str, email: str, **options) -> None:
        users = get_user_model()
        user = users.objects.filter(username=username).first()
        created = user is None
        if created:
            password = password or secrets.token_urlsafe(12)
            user = users.objects.create_superuser(username=username, email=email, password=password)
        token, _ = Token.objects.get_or_create(user=user)
        if created:
            self.stdout.write(f"admin user: {username}")
            self.stdout.write(f"admin password: {password}")
        else:
            self.stdout.write(f"admin user {username} exists (password unchanged)")
        self.stdout.write(f"api token: {token.key}")
