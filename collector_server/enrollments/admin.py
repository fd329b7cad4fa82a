"""Admin for enrollments: enroll a host (the credential is shown once), revoke, rotate."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from collector_server.enrollments.models import Enrollment
from collector_server.orgs import roles
from collector_server.orgs.admin_scope import OrganizationAdminMixin


@admin.register(Enrollment)
class EnrollmentAdmin(OrganizationAdminMixin, admin.ModelAdmin):
    view_role = roles.ADMIN  # like the API: the organisation's admins only
    list_display = ["host_name", "key_id", "group", "created_at", "rotated_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["host_name", "key_id"]
    readonly_fields = [
        "key_id",
        "created_at",
        "rotated_at",
        "previous_valid_until",
        "revoked_at",
        "created_by",
    ]
    fields = ["organization", "host_name", "group", "note", *readonly_fields]
    actions = ["revoke", "rotate"]

    def get_readonly_fields(self, request: HttpRequest, obj: Enrollment | None = None) -> list[str]:
        # The host name of an existing enrollment is its identity: enroll again instead.
        return [*self.readonly_fields, "organization", "host_name", "group"] if obj else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Enrollment, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        created, credential = Enrollment.enroll(
            obj.host_name,
            user=request.user,
            note=obj.note,
            group=obj.group,
            organization_id=obj.organization_id,
        )
        obj.pk, obj.key_id = created.pk, created.key_id
        self.message_user(
            request,
            f"Enrolled {obj.host_name}. Credential (shown only now, copy it to the host): {credential}  "
            f"— on the host: fleetwatch-agent --save-credential {credential}",
            messages.WARNING,
        )

    @admin.action(description="Revoke: refuse every batch signed with these keys, at once")
    def revoke(self, request: HttpRequest, queryset: QuerySet[Enrollment]) -> None:
        for enrollment in queryset:
            enrollment.revoke()
        self.message_user(request, f"Revoked {queryset.count()} enrollment(s).", messages.SUCCESS)

    @admin.action(description="Rotate the secret (the old one stays valid for the grace period)")
    def rotate(self, request: HttpRequest, queryset: QuerySet[Enrollment]) -> None:
        for enrollment in queryset.filter(revoked_at__isnull=True):
            credential = enrollment.rotate()
            self.message_user(
                request,
                f"New credential for {enrollment.host_name} (shown only now): {credential}",
                messages.WARNING,
            )
