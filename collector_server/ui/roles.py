"""Who may do what in the UI: the one place role checks live.

A user may act (acknowledge, resolve, silence) with the ``operator`` role, and edit rules
with ``admin``, in the organisation acted in (the request's scope: the session's choice or
every membership); every member may look. Every template and page script reads the
``can_operate`` flag this module puts in the context; the API enforces the same roles.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from collector_server.orgs import roles
from collector_server.orgs.scope import NOTHING, Scope
from collector_server.orgs.scope import current as current_scope


def _scope(request: HttpRequest | None) -> Scope:
    found = getattr(request, "fleetwatch_scope", None) if request is not None else None
    if found is None:
        found = current_scope()
    return found or NOTHING


def can_operate(user: Any, request: HttpRequest | None = None) -> bool:
    """Return whether `user` holds the operator role (or admin) in the organisation acted in."""
    if not getattr(user, "is_authenticated", False):
        return False
    scope = _scope(request)
    return roles.at_least(scope.role_in(scope.write_org_id) or scope.best_role(), roles.OPERATOR)


def can_administer(user: Any, request: HttpRequest | None = None) -> bool:
    """Return whether `user` is an admin of the organisation acted in (rules, channels)."""
    if not getattr(user, "is_authenticated", False):
        return False
    scope = _scope(request)
    return roles.at_least(scope.role_in(scope.write_org_id), roles.ADMIN)


def context(request: HttpRequest) -> dict[str, Any]:
    """Template context processor: ``can_operate`` and ``can_administer`` for the current user."""
    user = getattr(request, "user", None)
    return {"can_operate": can_operate(user, request), "can_administer": can_administer(user, request)}
