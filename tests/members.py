"""Test helpers: make a user a member of an organisation, issue it an API token."""

from __future__ import annotations

from typing import Any


def organization(slug: str | None = None) -> Any:
    """The organisation ``slug`` (created when missing); the default organisation without one."""
    from collector_server.orgs.models import Organization
    from collector_server.orgs.scope import default_organization_id

    if slug is None:
        return Organization.objects.get(pk=default_organization_id())
    return Organization.objects.get_or_create(slug=slug, defaults={"name": slug})[0]


def member(user: Any, role: str = "admin", org: str | None = None) -> Any:
    """Give ``user`` ``role`` in organisation ``org`` (default organisation); return the user."""
    from collector_server.orgs.models import Membership

    Membership.all_objects.update_or_create(
        user=user, organization=organization(org), defaults={"role": role}
    )
    return user


def issue_token(user: Any, role: str = "admin", org: str | None = None, **fields: Any) -> str:
    """A new API token of ``user`` in ``org`` with ``role``; return its key."""
    from collector_server.orgs.models import ApiToken

    _, key = ApiToken.issue(user, organization(org), role=role, **fields)
    return key
