"""Admin pages of organisations, members, API tokens and the audit trail."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from collector_server.orgs import roles
from collector_server.orgs.admin_scope import OrganizationAdminMixin
from collector_server.orgs.models import ApiToken, AuditEvent, Membership, Organization


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    """Organisations are created and removed by superusers (or fleetwatch-manage add-member)."""

    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]

    def delete_queryset(self, request, queryset):  # type: ignore[no-untyped-def]
        for organization in queryset:  # one by one, so that each sends organization_deleting
            organization.delete()


@admin.register(Membership)
class MembershipAdmin(OrganizationAdminMixin, admin.ModelAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role", "organization"]
    search_fields = ["user__username"]
    raw_id_fields = ["user"]  # a drop-down would list every user of every organisation
    view_role = roles.ADMIN


@admin.register(ApiToken)
class ApiTokenAdmin(OrganizationAdminMixin, admin.ModelAdmin):
    """Tokens are issued by the API or add-member (the key is shown once); here they are revoked."""

    list_display = [
        "name",
        "prefix",
        "user",
        "organization",
        "role",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["role", "organization", "revoked_at"]
    search_fields = ["name", "prefix", "user__username"]
    readonly_fields = ["user", "organization", "prefix", "created_at", "last_used_at", "revoked_at"]
    fields = ["name", "role", "expires_at", *readonly_fields]
    actions = ["revoke"]
    view_role = roles.ADMIN

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    @admin.action(description="Revoke the selected tokens", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        count = 0
        for token in queryset.filter(revoked_at__isnull=True):
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            count += 1
        messages.success(request, f"{count} token(s) revoked.")


@admin.register(AuditEvent)
class AuditEventAdmin(OrganizationAdminMixin, admin.ModelAdmin):
    list_display = ["at", "organization", "actor_name", "action", "object_type", "object_id", "object_repr"]
    list_filter = ["action", "object_type", "organization"]
    search_fields = ["actor_name", "object_repr", "object_id"]
    date_hierarchy = "at"
    readonly_fields = [f.name for f in AuditEvent._meta.fields]
    view_role = roles.ADMIN

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the trail is append-only
