from __future__ import annotations

from rest_framework import serializers

from collector_server.enrollments.models import Enrollment
from collector_server.monitoring.api.strict import RejectUnknownFieldsMixin


class EnrollmentSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    revoked = serializers.BooleanField(read_only=True)

    class Meta:
        model = Enrollment
        fields = [
            "id",
            "host_name",
            "key_id",
            "group",
            "note",
            "created_at",
            "rotated_at",
            "previous_valid_until",
            "revoked",
            "revoked_at",
        ]
        read_only_fields = ["key_id", "created_at", "rotated_at", "previous_valid_until", "revoked_at"]


class EnrollmentCreatedSerializer(EnrollmentSerializer):
    """The answer to enroll and rotate: the only time the credential is shown."""

    credential = serializers.SerializerMethodField()

    class Meta(EnrollmentSerializer.Meta):
        fields = [*EnrollmentSerializer.Meta.fields, "credential"]

    def get_credential(self, obj: Enrollment) -> str:
        return str(self.context["credential"])


class RotateSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    grace_seconds = serializers.IntegerField(min_value=0, max_value=30 * 86400, required=False)
