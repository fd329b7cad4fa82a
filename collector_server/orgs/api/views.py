"""GET audit/; tokens and members of the caller's organisation (admins)."""

from __future__ import annotations

from typing import Any

import django_filters
from django.contrib.auth import get_user_model
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from collector_server.alerts.api.filters import UtcIsoDateTimeFilter
from collector_server.monitoring.api.known_params import KnownQueryParamsMixin
from collector_server.monitoring.api.pagination import CheckedLimitOffsetPagination
from collector_server.monitoring.api.schema import envelope
from collector_server.orgs import roles
from collector_server.orgs.api import serializers as s
from collector_server.orgs.models import ApiToken, AuditEvent, Membership
from collector_server.orgs.permissions import IsOrgAdmin, request_scope
from collector_server.orgs.views import OrganizationScopedMixin, creation_organization


class AuditFilter(django_filters.FilterSet):
    actor = django_filters.CharFilter(field_name="actor_name", help_text="Username of the actor.")
    object_type = django_filters.CharFilter(help_text="app_label.model, e.g. alerts.alertrule.")
    object_id = django_filters.CharFilter()
    action = django_filters.CharFilter(help_text="create, update, delete, acknowledge, resolve.")
    # Turned into UTC: Postgres refuses UTC offsets beyond 15:59 (a 500 that aborted the request's
    # transaction otherwise); a time out of range once in UTC is a 400 naming the parameter.
    since = UtcIsoDateTimeFilter(field_name="at", lookup_expr="gte", help_text="ISO 8601, inclusive.")
    until = UtcIsoDateTimeFilter(field_name="at", lookup_expr="lt", help_text="ISO 8601, exclusive.")

    class Meta:
        model = AuditEvent
        fields = ["actor", "object_type", "object_id", "action", "since", "until"]


class AuditEventViewSet(OrganizationScopedMixin, KnownQueryParamsMixin, viewsets.ReadOnlyModelViewSet):
    """The audit trail of the organisation, newest first (admins only)."""

    lookup_value_regex = r"\d+"
    queryset = AuditEvent.objects.all()
    serializer_class = s.AuditEventSerializer
    filterset_class = AuditFilter
    pagination_class = CheckedLimitOffsetPagination
    permission_classes = [IsOrgAdmin]


class ApiTokenViewSet(
    OrganizationScopedMixin,
    KnownQueryParamsMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """API tokens of the organisation. POST returns the key once; DELETE revokes (the row stays)."""

    lookup_value_regex = r"\d+"
    queryset = ApiToken.objects.select_related("user", "organization")
    serializer_class = s.ApiTokenSerializer
    permission_classes = [IsOrgAdmin]

    @extend_schema(
        request=s.ApiTokenSerializer,
        responses={201: envelope("ApiTokenCreatedResponse", s.ApiTokenCreatedSerializer())},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        org_id = creation_organization(request, self)
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        username = data.get("user", {}).get("username") or request.user.get_username()
        user = get_user_model().objects.filter(username=username).first()
        member_role = self._member_role(user, org_id)
        if user is None or member_role is None:
            raise exceptions.ValidationError({"user": [f"{username!r} is not a member of this organisation"]})
        if not roles.at_least(member_role, data.get("role", roles.VIEWER)):
            raise exceptions.ValidationError(
                {"role": [f"{username!r} is only {member_role} in this organisation"]}
            )
        token, key = ApiToken.issue(
            user,
            self._organization(org_id),
            name=data["name"],
            role=data.get("role", roles.VIEWER),
            expires_at=data.get("expires_at"),
        )
        out = {**s.ApiTokenSerializer(token).data, "key": key}
        return Response({"success": True, "data": out}, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: ApiToken) -> None:
        if instance.revoked_at is None:
            instance.revoked_at = timezone.now()
            instance.save(update_fields=["revoked_at"])

    @staticmethod
    def _member_role(user: Any, org_id: int) -> str | None:
        if user is None:
            return None
        if user.is_superuser:
            return roles.ADMIN
        return (
            Membership.all_objects.filter(user=user, organization_id=org_id)
            .values_list("role", flat=True)
            .first()
        )

    @staticmethod
    def _organization(org_id: int) -> Any:
        from collector_server.orgs.models import Organization

        return Organization.objects.get(pk=org_id)


class MembershipViewSet(OrganizationScopedMixin, KnownQueryParamsMixin, viewsets.ModelViewSet):
    """Members of the organisation and their roles (admins only)."""

    lookup_value_regex = r"\d+"
    queryset = Membership.objects.select_related("user", "organization")
    serializer_class = s.MembershipSerializer
    permission_classes = [IsOrgAdmin]

    def perform_create(self, serializer: s.MembershipSerializer) -> None:
        org_id = creation_organization(self.request, self)
        user = serializer.validated_data.pop("user")["username"]
        if Membership.all_objects.filter(user=user, organization_id=org_id).exists():
            raise exceptions.ValidationError({"user": [f"{user.username!r} is already a member"]})
        serializer.save(user=user, organization_id=org_id)

    def perform_update(self, serializer: s.MembershipSerializer) -> None:
        serializer.validated_data.pop("user", None)
        serializer.save()

    def perform_destroy(self, instance: Membership) -> None:
        scope = request_scope(self.request)
        if instance.user_id == self.request.user.pk and not scope.superuser:
            raise exceptions.ValidationError({"user": ["you cannot remove your own membership"]})
        instance.delete()
