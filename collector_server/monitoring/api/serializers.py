"""Serializers of the monitoring API."""

from __future__ import annotations

from rest_framework import serializers

from collector_server.monitoring.models import Host


class HostSerializer(serializers.ModelSerializer):
    is_up = serializers.BooleanField(read_only=True, help_text="Seen within HOST_DOWN_AFTER_SECONDS.")
    series_count = serializers.IntegerField(read_only=True, help_text="Series stored for this host.")

    class Meta:
        model = Host
        fields = [
            "id",
            "agent_id",
            "hostname",
            "labels",
            "agent_version",
            "first_seen",
            "last_seen",
            "is_up",
            "series_count",
        ]
        read_only_fields = fields
