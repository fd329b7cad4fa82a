"""Verify batch signatures and take the host identity from the enrollment.

Each stream entry of an enrolled agent carries its key id (field ``k``) and the hex
HMAC-SHA256 of the batch bytes (field ``s``, see shared/signing.py). The worker looks
the key up (cached), compares in constant time against every secret valid now (the
current one and, during a rotation's grace period, the previous one), and on success
stores the batch under the enrollment's host name, whatever the batch claims.

Refusals carry a reason code, counted as ``batches_refused_<code>`` in the stats hash
and exposed as ``fleetwatch_batches_refused_total{reason=...}``:

- ``unsigned``: no key id and no signature while FLEETWATCH_REQUIRE_SIGNED_BATCHES is true;
- ``unknown_key``: no enrollment has this key id;
- ``revoked``: the enrollment was revoked;
- ``bad_signature``: the signature is missing, malformed or matches no valid secret.

Cache invalidation is honest across workers: every enrollment change bumps a Redis
version key (``{prefix}:enrollments:version``), which each worker reads once per chunk;
a changed version drops the cache, so a revocation stops a host's data with the next
chunk. ENROLLMENT_CACHE_SECONDS bounds the age of an entry even if that key were lost.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from redis import Redis

from shared import streams
from shared.signing import KEY_FIELD, KEY_ID_RE, REASONS, SERVER_KEY_ID, SIGNATURE_FIELD, SIGNATURE_RE
from shared.wire import Batch

CACHE_LIMIT = 10_000


class Refused(Exception):
    """An entry's signature cannot be accepted; `code` is one of REASONS."""

    reasons = REASONS

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Identity:
    """Who signed a batch, as the enrollment says."""

    key_id: str
    host: str
    group: bool = False

    def apply(self, batch: Batch) -> None:
        """Store the batch as this enrollment's: its host name, and sequences namespaced by key id.

        A group enrollment (one credential for a DaemonSet's nodes) keeps the node the batch
        names, under the group's name: "<group>/<node>", never a host outside the group. The
        namespace keeps one host from claiming (and so suppressing as duplicates) the batch
        identities of another host's agent id.
        """
        batch.host = f"{self.host}/{batch.host}" if self.group else self.host
        batch.agent_id = f"{self.key_id}:{batch.agent_id}"


@dataclass(slots=True)
class _Entry:
    loaded_at: float
    identity: Identity | None = None  # None: no such key
    revoked: bool = False
    macs: list[tuple[object, float | None]] = field(default_factory=list)


class EnrollmentCache:
    """Enrollments by key id, dropped when the Redis version key changes or after a TTL."""

    def __init__(self) -> None:
        self.entries: dict[str, _Entry] = {}
        self.version: bytes | None = None

    def sync(self, client: Redis) -> None:
        """Read the version key once (per chunk); drop everything if it moved."""
        version = client.get(streams.enrollments_version_key())
        if version != self.version:
            self.entries.clear()
            self.version = version

    def get(self, key_id: str) -> _Entry:
        entry = self.entries.get(key_id)
        if entry is None or time.monotonic() - entry.loaded_at > settings.ENROLLMENT_CACHE_SECONDS:
            if len(self.entries) >= CACHE_LIMIT:
                self.entries.clear()
            entry = self.entries[key_id] = load(key_id)
        return entry


def load(key_id: str) -> _Entry:
    from collector_server.enrollments.models import Enrollment

    entry = _Entry(loaded_at=time.monotonic())
    enrollment = Enrollment.objects.filter(key_id=key_id).first()
    if enrollment is None:
        return entry
    entry.identity = Identity(enrollment.key_id, enrollment.host_name, enrollment.group)
    entry.revoked = enrollment.revoked
    entry.macs = [
        (hmac.new(secret.encode("ascii"), digestmod=hashlib.sha256), until)
        for secret, until in enrollment.valid_secrets()
    ]
    return entry


CACHE = EnrollmentCache()


class Verifier:
    """Check the signature fields of stream entries (one per consumer)."""

    def __init__(self, client: Redis, cache: EnrollmentCache = CACHE) -> None:
        self.client = client
        self.cache = cache
        self.server_mac: Any = None

    def begin_chunk(self) -> None:
        self.cache.sync(self.client)

    def check_server(self, sig: bytes, payload: bytes) -> None:
        """Accept a batch the web process queued (remote write, OTLP): its host stays as named."""
        if self.server_mac is None:
            from collector_server.enrollments.models import server_secret

            self.server_mac = hmac.new(server_secret().encode("ascii"), digestmod=hashlib.sha256)
        mac = self.server_mac.copy()
        mac.update(payload)
        if not hmac.compare_digest(mac.hexdigest().encode("ascii"), sig):
            raise Refused("bad_signature", "signature does not match the server's own key")
        return None

    def check(self, fields: dict[bytes, bytes], payload: bytes) -> Identity | None:
        """Return the signer's identity, None for an accepted unsigned entry, or raise Refused."""
        key, sig = fields.get(KEY_FIELD), fields.get(SIGNATURE_FIELD)
        if key is None and sig is None:
            if settings.REQUIRE_SIGNED_BATCHES:
                raise Refused("unsigned", "unsigned batch: FLEETWATCH_REQUIRE_SIGNED_BATCHES is true")
            return None
        if key is None or sig is None or not SIGNATURE_RE.match(sig):
            raise Refused("bad_signature", "signature fields 'k' and 's' (64 hex digits) are both required")
        key_id = key.decode("ascii", errors="replace")
        if not KEY_ID_RE.match(key_id):  # no database query for what cannot be a key id
            raise Refused("unknown_key", f"unknown key id {key_id[:64]!r}")
        if key_id == SERVER_KEY_ID:
            return self.check_server(sig, payload)
        entry = self.cache.get(key_id)
        if entry.identity is None:
            raise Refused("unknown_key", f"unknown key id {key_id!r}")
        if entry.revoked:
            raise Refused("revoked", f"key id {key_id!r} ({entry.identity.host}) is revoked")
        now = time.time()
        for keyed, until in entry.macs:
            if until is not None and until <= now:
                continue  # a previous secret past its grace period
            mac = keyed.copy()  # type: ignore[attr-defined]
            mac.update(payload)
            if hmac.compare_digest(mac.hexdigest().encode("ascii"), sig):
                return entry.identity
        raise Refused("bad_signature", f"signature does not match key id {key_id!r} ({entry.identity.host})")
