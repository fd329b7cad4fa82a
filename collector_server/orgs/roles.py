"""The roles of a member in an organisation, weakest first."""

from __future__ import annotations

VIEWER, OPERATOR, ADMIN = "viewer", "operator", "admin"
ROLES = (VIEWER, OPERATOR, ADMIN)
ROLE_CHOICES = [(role, role) for role in ROLES]


def rank(role: str | None) -> int:
    """Return 0 for no role, 1 viewer, 2 operator, 3 admin."""
    return ROLES.index(role) + 1 if role in ROLES else 0


def at_least(role: str | None, needed: str) -> bool:
    return rank(role) >= rank(needed)


def weaker(first: str, second: str) -> str:
    return first if rank(first) <= rank(second) else second
