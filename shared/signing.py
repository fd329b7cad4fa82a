"""Batch signatures: HMAC-SHA256 over a batch's exact bytes (see docs/wire-format.md).

An enrolled agent holds a credential ``<key id>.<secret>``. Each stream entry carries,
next to the batch in field ``b``, the key id in field ``k`` and the lowercase hex
HMAC-SHA256 of the batch bytes, keyed with the secret's ASCII bytes, in field ``s``.
The agent and the workers both use this module; it imports nothing from Django.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

KEY_FIELD = b"k"
SIGNATURE_FIELD = b"s"
KEY_ID_RE = re.compile(r"^[a-z0-9]{8,64}$")
SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{32,128}$")
SIGNATURE_RE = re.compile(rb"^[0-9a-f]{64}$")
# Why a worker refuses an entry; counted as batches_refused_<reason> in the stats hash.
REASONS = ("unsigned", "unknown_key", "revoked", "bad_signature")
COUNTER_PREFIX = "batches_refused_"
# The web process's own receivers (remote write, OTLP) sign what they queue with this key id:
# not hex, so no enrollment ever has it (collector_server.enrollments.models.server_secret).
SERVER_KEY_ID = "fleetwatchserver"


class CredentialError(ValueError):
    """A credential string is malformed; the message says how."""


@dataclass(frozen=True, slots=True)
class Credential:
    key_id: str
    secret: str

    def __str__(self) -> str:
        return f"{self.key_id}.{self.secret}"

    def __repr__(self) -> str:  # never print the secret by accident
        return f"Credential(key_id={self.key_id!r}, secret=<hidden>)"


def parse_credential(text: str) -> Credential:
    """Return the credential in ``<key id>.<secret>``, raising CredentialError naming the problem."""
    key_id, dot, secret = text.strip().partition(".")
    if not dot or not KEY_ID_RE.match(key_id):
        raise CredentialError(
            "credential must look like <key id>.<secret> (from fleetwatch-manage enroll-agent)"
        )
    if not SECRET_RE.match(secret):
        raise CredentialError(f"credential {key_id}.…: the secret part is malformed")
    return Credential(key_id, secret)


def signature(secret: str | bytes, payload: bytes) -> bytes:
    """Return the lowercase hex HMAC-SHA256 of `payload` keyed with `secret`."""
    key = secret.encode("ascii") if isinstance(secret, str) else secret
    return hmac.new(key, payload, hashlib.sha256).hexdigest().encode("ascii")


class Signer:
    """Add the key id and signature fields to a stream entry (the agent side)."""

    def __init__(self, credential: Credential) -> None:
        self.key_id = credential.key_id.encode("ascii")
        self._mac = hmac.new(credential.secret.encode("ascii"), digestmod=hashlib.sha256)

    def fields(self, payload: bytes) -> dict[bytes, bytes]:
        mac = self._mac.copy()  # the keyed state is computed once
        mac.update(payload)
        return {KEY_FIELD: self.key_id, SIGNATURE_FIELD: mac.hexdigest().encode("ascii")}
