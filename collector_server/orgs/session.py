"""The session's choice of organisation (dashboard, admin and session-authenticated API calls)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from collector_server.orgs.models import Membership, Organization
from collector_server.orgs.resolve import SESSION_KEY


def selectable(user: Any) -> list[Organization]:
    """The organisations ``user`` may choose: all for a superuser, else its memberships'."""
    if user.is_superuser:
        return list(Organization.objects.order_by("slug"))
    ids = Membership.all_objects.filter(user=user).values_list("organization_id", flat=True)
    return list(Organization.objects.filter(pk__in=ids).order_by("slug"))


def switch_organization(request: HttpRequest, slug: str) -> bool:
    """Keep ``slug`` as the session's organisation ("" clears it); False if the user may not."""
    if not slug:
        request.session.pop(SESSION_KEY, None)
        return True
    if slug not in {org.slug for org in selectable(request.user)}:
        return False
    request.session[SESSION_KEY] = slug
    return True


def organization_choice(request: HttpRequest) -> dict[str, Any]:
    return {"organizations": selectable(request.user), "organization": request.session.get(SESSION_KEY, "")}
