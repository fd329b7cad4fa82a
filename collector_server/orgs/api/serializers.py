"""Serializers of the audit trail, API tokens and memberships."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from rest_framework import serializers

from collector_server.monitoring.api.strict import RejectUnknownFieldsMixin
from collector_server.orgs import roles
from collector_server.orgs.models import ApiToken, AuditEvent, Membership


class AuditEventSerializer(serializers.ModelSerializer):
    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    actor = serializers.CharField(source="actor_name", read_only=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "at",
            "organization",
            "actor",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "changes",
        ]
        read_only_fields = fields


class ApiTokenSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    user = serializers.CharField(
        source="user.username", required=False, help_text="A member of the organisation; default: yourself."
    )

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "role",
            "organization",
            "user",
            "prefix",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
        ]
        read_only_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    """The answer to POST tokens/: the token and its key, shown this once."""

    key = serializers.CharField(read_only=True)

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "key"]


class MembershipSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    user = serializers.CharField(source="user.username")

    class Meta:
        model = Membership
        fields = ["id", "user", "organization", "role", "created_at"]
        read_only_fields = ["created_at"]

    def validate_user(self, value: str) -> Any:
        user = get_user_model().objects.filter(username=value).first()
        if user is None:
            raise serializers.ValidationError(
                f"no user {value!r} (create it with fleetwatch-manage add-member)"
            )
        if self.instance is not None and self.instance.user_id != user.pk:
            raise serializers.ValidationError(
                "the user of a membership cannot change; delete it and add another"
            )
        return user

    def validate_role(self, value: str) -> str:
        if value not in roles.ROLES:
            raise serializers.ValidationError(f"unknown role {value!r} (use one of {', '.join(roles.ROLES)})")
        return value
