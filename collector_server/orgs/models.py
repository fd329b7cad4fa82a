"""Organisations, memberships with a role, hashed API tokens and the audit trail."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models, transaction
from django.dispatch import Signal
from django.utils import timezone

from collector_server.orgs import roles
from collector_server.orgs.scope import OrgManager

# Sent (inside the deletion's transaction) before an organisation is deleted: the apps that
# created things in every new organisation (the default rules) remove them, so that what the
# system made never keeps an otherwise empty organisation from being deleted. Its data (hosts,
# series, logs, alerts, the rules and channels people made) still protects it.
organization_deleting = Signal()

TOKEN_PREFIX = "fw_"
LAST_USED_RESOLUTION = timedelta(seconds=60)  # last_used_at is written at most once a minute


class Organization(models.Model):
    """A tenant: every host, series, log record, rule, channel, silence and alert belongs to one."""

    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug"]
        verbose_name = "organisation"

    def __str__(self) -> str:
        return self.slug

    def delete(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        with transaction.atomic():
            organization_deleting.send(sender=type(self), organization=self)
            return super().delete(*args, **kwargs)


class Membership(models.Model):
    """A user's role in one organisation."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=roles.ROLE_CHOICES, default=roles.VIEWER)
    created_at = models.DateTimeField(default=timezone.now)

    objects = OrgManager()
    all_objects = models.Manager()  # authentication looks members up before any scope exists

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="membership_user_org_uniq")
        ]
        ordering = ["organization__slug", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"


def hash_key(key: str) -> str:
    """Tokens are long random strings, so one SHA-256 is enough (no slow password hash needed)."""
    return hashlib.sha256(key.encode()).hexdigest()


class ApiToken(models.Model):
    """An API key of one user for one organisation, stored hashed; the key is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    role = models.CharField(
        max_length=10,
        choices=roles.ROLE_CHOICES,
        default=roles.VIEWER,
        help_text="The most this token may do; never more than the user's role in the organisation.",
    )
    prefix = models.CharField(max_length=16, editable=False, help_text="The key's first characters.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = OrgManager()
    all_objects = models.Manager()  # authentication looks keys up before any scope exists

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(
        cls,
        user: object,
        organization: Organization,
        name: str = "api",
        role: str = roles.VIEWER,
        expires_at: object = None,
    ) -> tuple[ApiToken, str]:
        """Create a token; return it and its key (the only time the key is available)."""
        key = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = cls.all_objects.create(
            user=user,
            organization=organization,
            name=name,
            role=role,
            prefix=key[:10],
            key_hash=hash_key(key),
            expires_at=expires_at,
        )
        return token, key

    @property
    def is_active(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def touch(self) -> None:
        """Record the use, at most once per LAST_USED_RESOLUTION (no write on every request)."""
        now = timezone.now()
        if self.last_used_at is None or now - self.last_used_at >= LAST_USED_RESOLUTION:
            ApiToken.all_objects.filter(pk=self.pk).update(last_used_at=now)
            self.last_used_at = now


class AuditEvent(models.Model):
    """One change (create, update, delete) or operator action, with the fields before and after."""

    CREATE, UPDATE, DELETE = "create", "update", "delete"

    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True, help_text="Kept when the user is deleted.")
    action = models.CharField(max_length=30, db_index=True)
    object_type = models.CharField(max_length=100, db_index=True, help_text="app_label.model")
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(
        default=dict, blank=True, help_text='{"field": [before, after]}, secrets masked.'
    )

    objects = OrgManager()
    all_objects = models.Manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["organization", "-at"], name="audit_org_at_idx")]
        verbose_name = "audit event"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name or '-'} {self.action} {self.object_type} {self.object_id}"
