"""The view mixin of organisation-owned resources: scoped querysets, creation in the caller's organisation."""

from __future__ import annotations

from typing import Any

from django.db import models
from rest_framework import exceptions
from rest_framework.request import Request

from collector_server.orgs import roles
from collector_server.orgs.permissions import request_scope, required_role
from collector_server.orgs.scope import restrict


def org_path(model: type[models.Model]) -> str:
    return getattr(model._default_manager, "org_path", "organization")


def creation_organization(request: Request, view: Any) -> int:
    """The organisation a new object goes to; PermissionDenied without the needed role there."""
    scope = request_scope(request)
    org_id = scope.write_org_id
    need = required_role(view, request)
    if org_id is None or not roles.at_least(scope.role_in(org_id), need):
        raise exceptions.PermissionDenied(
            f"creating this needs the {need} role in the organisation you write to; "
            "choose one with the X-Fleetwatch-Organization header"
        )
    return org_id


def check_unique_in_organization(
    model: type[models.Model], org_id: int, pk: Any, values: dict[str, Any]
) -> None:
    """Refuse, naming the field, a value another object of the organisation already has."""
    for constraint in model._meta.constraints:
        fields = list(getattr(constraint, "fields", ()))
        if "organization" not in fields or getattr(constraint, "condition", None) is not None:
            continue
        others = [f for f in fields if f != "organization"]
        if not others or not all(f in values for f in others):
            continue
        clash = model._base_manager.filter(organization_id=org_id, **{f: values[f] for f in others})
        if pk is not None:
            clash = clash.exclude(pk=pk)
        if clash.exists():
            raise exceptions.ValidationError(
                {
                    others[0]: [
                        f"a {model._meta.verbose_name} with this {others[0]} already exists in this organisation"
                    ]
                }
            )


def check_same_organization(org_id: int, values: dict[str, Any]) -> None:
    """Refuse a reference (a foreign key or many-to-many value) to another organisation's object."""
    for name, value in values.items():
        items = value if isinstance(value, list | tuple) else [value]
        for item in items:
            other = getattr(item, "organization_id", None) if isinstance(item, models.Model) else None
            if other is not None and other != org_id:
                raise exceptions.ValidationError({name: [f"{item} belongs to another organisation"]})


class OrganizationScopedMixin:
    """For viewsets of organisation-owned models (a ``queryset`` whose default manager is ``OrgManager``).

    - ``get_queryset()`` keeps only the caller's organisation(s) (also done by the manager: belt and braces);
    - ``perform_create`` saves into the caller's write organisation, after checking the role there;
    - ``perform_create``/``perform_update`` refuse a duplicate of a per-organisation unique field with a 400.
    """

    def get_queryset(self) -> models.QuerySet:
        queryset = super().get_queryset()  # type: ignore[misc]
        return restrict(queryset, org_path(queryset.model))

    def perform_create(self, serializer: Any) -> None:
        org_id = creation_organization(self.request, self)  # type: ignore[attr-defined]
        check_unique_in_organization(serializer.Meta.model, org_id, None, serializer.validated_data)
        check_same_organization(org_id, serializer.validated_data)
        serializer.save(organization_id=org_id, **self.creation_extras())

    def perform_update(self, serializer: Any) -> None:
        instance = serializer.instance
        check_unique_in_organization(
            type(instance), instance.organization_id, instance.pk, serializer.validated_data
        )
        check_same_organization(instance.organization_id, serializer.validated_data)
        serializer.save()

    def creation_extras(self) -> dict[str, Any]:
        return {}
