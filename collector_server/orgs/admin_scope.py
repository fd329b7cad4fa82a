"""The admin's side of the organisations: every org-owned model's admin uses ``OrganizationAdminMixin``.

The list and the forms show the caller's organisations only (the scope the middleware set);
viewing needs ``viewer`` in the object's organisation, adding, changing and deleting
``change_role`` (``admin`` unless the admin class says ``operator``). A superuser sees all
and may pick any organisation for an object; others one where they hold ``change_role``.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.http import HttpRequest

from collector_server.orgs import roles
from collector_server.orgs.permissions import organization_id_of
from collector_server.orgs.scope import NOTHING, Scope, restrict


def admin_scope(request: HttpRequest) -> Scope:
    return getattr(request, "fleetwatch_scope", NOTHING)


class OrganizationAdminMixin:
    change_role: str = roles.ADMIN
    view_role: str = roles.VIEWER

    def _path(self) -> str:
        return getattr(self.model._default_manager, "org_path", "organization")  # type: ignore[attr-defined]

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        return restrict(super().get_queryset(request), self._path())  # type: ignore[misc]

    def _role_for(self, request: HttpRequest, obj: Any) -> str | None:
        scope = admin_scope(request)
        if obj is None:
            return scope.best_role()
        return scope.role_in(organization_id_of(obj))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and roles.at_least(admin_scope(request).best_role(), self.view_role)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_active and roles.at_least(self._role_for(request, obj), self.view_role)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return roles.at_least(self._role_for(request, obj), self.change_role)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return roles.at_least(self._role_for(request, obj), self.change_role)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        scope = admin_scope(request)
        return roles.at_least(scope.role_in(scope.write_org_id), self.change_role)

    def get_list_filter(self, request: HttpRequest) -> Any:
        """Filtering by organisation lists every organisation's name: superusers only."""
        filters = list(super().get_list_filter(request))  # type: ignore[misc]
        return filters if admin_scope(request).superuser else [f for f in filters if f != "organization"]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        """The organisation of an object: one where the caller holds ``change_role`` (any, for a superuser)."""
        if db_field.name == "organization":
            from collector_server.orgs.models import Organization

            scope = admin_scope(request)
            if not scope.superuser:
                allowed = [org for org, role in scope.roles.items() if roles.at_least(role, self.change_role)]
                kwargs["queryset"] = Organization.objects.filter(pk__in=allowed)
            kwargs.setdefault("initial", scope.write_org_id)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]
