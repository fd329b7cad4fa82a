"""DRF permission classes: the caller's role in the object's organisation.

``OrganizationRole`` is the project's default permission class. What a view needs:

- ``required_roles`` on the view, a dict from action (``"acknowledge"``) or method
  (``"post"``) to role, wins;
- otherwise safe methods need ``viewer`` and every other method ``admin`` (fail closed).

``IsViewer``, ``IsOperator`` and ``IsOrgAdmin`` demand a fixed role whatever the view says.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from collector_server.orgs import roles
from collector_server.orgs.resolve import requested_slug, scope_for
from collector_server.orgs.scope import Scope, activate


def request_scope(request: Request) -> Scope:
    """Resolve the caller's scope once per request and make it the active one."""
    django_request = getattr(request, "_request", request)
    scope = getattr(django_request, "fleetwatch_scope", None)
    if scope is None or getattr(django_request, "fleetwatch_scope_user", None) is not request.user:
        scope = scope_for(request.user, getattr(request, "auth", None), requested_slug(django_request))
        django_request.fleetwatch_scope = scope
        django_request.fleetwatch_scope_user = request.user
    activate(scope)  # reset by OrganizationScopeMiddleware when the response leaves
    return scope


def required_role(view: Any, request: Request) -> str:
    explicit: dict[str, str] = getattr(view, "required_roles", {}) or {}
    for key in (getattr(view, "action", None), request.method.lower()):
        if key and key in explicit:
            return explicit[key]
    return roles.VIEWER if request.method in SAFE_METHODS else roles.ADMIN


def organization_id_of(obj: Any) -> int | None:
    """The organisation of a model instance, following its default manager's org path."""
    if hasattr(obj, "organization_id"):
        return obj.organization_id
    path = getattr(type(obj)._default_manager, "org_path", "")
    target = obj
    for part in path.split("__")[:-1]:
        target = getattr(target, part, None)
    return getattr(target, "organization_id", None)


class OrganizationRole(BasePermission):
    """Authenticated, and holding the role the view asks for (see the module docstring)."""

    fixed_role: str | None = None
    message = "You do not have permission to perform this action."

    def needed(self, view: Any, request: Request) -> str:
        return self.fixed_role or required_role(view, request)

    def has_permission(self, request: Request, view: Any) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        scope = request_scope(request)
        need = self.needed(view, request)
        if roles.at_least(scope.best_role(), need):
            return True
        self.message = (
            f"this needs the {need} role in the organisation (yours: {scope.best_role() or 'none'})"
        )
        return False

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        scope = request_scope(request)
        need = self.needed(view, request)
        mine = scope.role_in(organization_id_of(obj))
        if roles.at_least(mine, need):
            return True
        self.message = f"this needs the {need} role in the object's organisation (yours: {mine or 'none'})"
        return False


class IsViewer(OrganizationRole):
    fixed_role = roles.VIEWER


class IsOperator(OrganizationRole):
    fixed_role = roles.OPERATOR


class IsOrgAdmin(OrganizationRole):
    fixed_role = roles.ADMIN
