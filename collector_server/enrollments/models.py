"""Enrolled agents: the host identity behind a batch signature (docs/security.md).

An enrollment holds a host name, a public key id and a per-enrollment salt. The agent's
secret is never stored: it is derived as HMAC-SHA256(enrollment key, key id + salt), where
the enrollment key comes from FLEETWATCH_ENROLLMENT_KEY (default: derived from SECRET_KEY).
A database dump alone therefore gives no one a credential. Rotating draws a new salt and
keeps the previous one valid until ``previous_valid_until`` (the grace period).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from collector_server.orgs.scope import OrgManager, organization_field
from shared.signing import Credential

KEY_ID_BYTES = 8
SALT_BYTES = 16


def enrollment_key() -> bytes:
    """The server-side key every agent secret is derived from."""
    configured = getattr(settings, "ENROLLMENT_KEY", "")
    source = configured or f"fleetwatch-enrollment:{settings.SECRET_KEY}"
    return hashlib.sha256(source.encode()).digest()


def derive_secret(key_id: str, salt: str) -> str:
    """Return the agent secret of (key id, salt): 43 URL-safe base64 characters."""
    digest = hmac.new(enrollment_key(), f"agent-secret:{key_id}:{salt}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def server_secret() -> str:
    """The secret the server's own receivers sign their batches with (derived, never stored)."""
    from shared.signing import SERVER_KEY_ID

    # Its batches keep the host they name: the request was authenticated by the API.
    return derive_secret(SERVER_KEY_ID, "server-receivers")


class Enrollment(models.Model):
    """An agent's credential; its hosts are stored in the enrollment's organisation."""

    organization = organization_field()
    host_name = models.CharField(
        max_length=255, help_text="Every batch signed with this key is stored under this host name."
    )
    key_id = models.CharField(max_length=64, unique=True, editable=False)
    salt = models.CharField(max_length=64, editable=False)
    previous_salt = models.CharField(max_length=64, blank=True, default="", editable=False)
    previous_valid_until = models.DateTimeField(null=True, blank=True, editable=False)
    group = models.BooleanField(
        default=False,
        help_text="One credential for many hosts (a Kubernetes DaemonSet): each batch is stored as "
        "<host name>/<the host it names>, so it can never claim a host outside this group.",
    )
    note = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, editable=False
    )

    objects = OrgManager()

    class Meta:
        ordering = ["host_name", "id"]

    def __str__(self) -> str:
        return f"{self.host_name} ({self.key_id})"

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @classmethod
    def enroll(
        cls,
        host_name: str,
        user=None,
        note: str = "",
        group: bool = False,
        organization_id: int | None = None,
    ) -> tuple[Enrollment, Credential]:
        """Create an enrollment; return it with the credential, shown this once.

        ``organization_id`` None: the active scope's write organisation, else the default one.
        """
        enrollment = cls(
            organization_id=organization_id,
            host_name=host_name,
            key_id=secrets.token_hex(KEY_ID_BYTES),
            salt=secrets.token_hex(SALT_BYTES),
            note=note,
            group=group,
            created_by=user if getattr(user, "pk", None) else None,
        )
        enrollment.full_clean(exclude=["organization"])
        enrollment.save()
        return enrollment, enrollment.credential()

    def credential(self) -> Credential:
        return Credential(self.key_id, derive_secret(self.key_id, self.salt))

    def valid_secrets(self, now=None) -> list[tuple[str, float | None]]:
        """Return (secret, valid until as a timestamp or None) for the secrets accepted now."""
        now = now or timezone.now()
        found: list[tuple[str, float | None]] = [(derive_secret(self.key_id, self.salt), None)]
        if self.previous_salt and self.previous_valid_until and self.previous_valid_until > now:
            found.append(
                (derive_secret(self.key_id, self.previous_salt), self.previous_valid_until.timestamp())
            )
        return found

    def rotate(self, grace: timedelta | None = None) -> Credential:
        """Draw a new secret; the old one stays valid for `grace` (default ENROLLMENT_ROTATION_GRACE_SECONDS)."""
        if self.revoked:
            raise ValueError("a revoked enrollment cannot be rotated; enroll the host again")
        if grace is None:
            grace = timedelta(seconds=settings.ENROLLMENT_ROTATION_GRACE_SECONDS)
        now = timezone.now()
        self.previous_salt, self.salt = self.salt, secrets.token_hex(SALT_BYTES)
        self.previous_valid_until = now + grace
        self.rotated_at = now
        self.save(update_fields=["salt", "previous_salt", "previous_valid_until", "rotated_at"])
        return self.credential()

    def revoke(self) -> None:
        """Refuse every batch signed with this key from now on."""
        if not self.revoked:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])


@receiver(post_save, sender=Enrollment)
@receiver(post_delete, sender=Enrollment)
def _changed(**kwargs) -> None:
    transaction.on_commit(announce_change, robust=True)


def announce_change() -> None:
    """Tell every worker to drop its cached enrollments (bump the version key)."""
    from collector_server.redis_conn import get_stream_redis
    from shared.streams import enrollments_version_key

    get_stream_redis().incr(enrollments_version_key())
