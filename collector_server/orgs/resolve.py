"""Work out a caller's scope: which organisations it sees and its role in each.

A token sees its own organisation with the weaker of the token's role and the user's
membership role. A session user sees every organisation it is a member of (a superuser:
all of them), or only the one it selects with the ``X-Fleetwatch-Organization`` header,
or the session's choice (``SESSION_KEY``).
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions

from collector_server.orgs import roles
from collector_server.orgs.models import ApiToken, Membership, Organization
from collector_server.orgs.scope import NOTHING, Scope, default_organization_id

HEADER = "HTTP_X_FLEETWATCH_ORGANIZATION"
SESSION_KEY = "fleetwatch_organization"


def requested_slug(request: Any) -> str | None:
    """The organisation the caller selects, if any (the header, else the session's choice)."""
    value = request.META.get(HEADER)
    if not value and hasattr(request, "session"):
        value = request.session.get(SESSION_KEY)
    return value or None


def _org_id(slug: str) -> int:
    org_id = Organization.objects.filter(slug=slug).values_list("pk", flat=True).first()
    if org_id is None:
        raise exceptions.NotFound(f"no organisation {slug!r}")
    return org_id


def scope_for(user: Any, token: Any = None, slug: str | None = None) -> Scope:
    """Return the scope of ``user`` (authenticated by ``token`` when given), selecting ``slug``."""
    if user is None or not user.is_authenticated:
        return NOTHING
    if isinstance(token, ApiToken):
        return _token_scope(user, token, slug)
    if user.is_superuser:
        if slug:
            org_id = _org_id(slug)
            return Scope(org_ids=frozenset({org_id}), write_org_id=org_id, superuser=True)
        return Scope(org_ids=None, write_org_id=default_organization_id(), superuser=True)
    member_roles = dict(Membership.all_objects.filter(user=user).values_list("organization_id", "role"))
    if slug:
        org_id = _org_id(slug)
        if org_id not in member_roles:
            raise exceptions.PermissionDenied(f"you are not a member of organisation {slug!r}")
        return Scope(org_ids=frozenset({org_id}), write_org_id=org_id, roles={org_id: member_roles[org_id]})
    return Scope(org_ids=frozenset(member_roles), write_org_id=_write_org(member_roles), roles=member_roles)


def _write_org(member_roles: dict[int, str]) -> int | None:
    """Where a member's new objects go: the one organisation, else the one where the role is strongest."""
    if not member_roles:
        return None
    return max(sorted(member_roles), key=lambda org_id: roles.rank(member_roles[org_id]))


def _token_scope(user: Any, token: ApiToken, slug: str | None) -> Scope:
    org_id = token.organization_id
    if slug and slug != token.organization.slug:
        raise exceptions.PermissionDenied(
            f"this token belongs to organisation {token.organization.slug!r}, not {slug!r}"
        )
    if user.is_superuser:
        role: str | None = token.role
    else:
        member = (
            Membership.all_objects.filter(user=user, organization_id=org_id)
            .values_list("role", flat=True)
            .first()
        )
        role = roles.weaker(token.role, member) if member else None
    return Scope(org_ids=frozenset({org_id}), write_org_id=org_id, roles={org_id: role} if role else {})
