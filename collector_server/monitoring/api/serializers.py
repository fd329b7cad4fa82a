"""Serializers of the monitoring API."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from collector_server.monitoring import host_refusals
from collector_server.monitoring.models import Host


class HostSerializer(serializers.ModelSerializer):
    is_up = serializers.BooleanField(read_only=True, help_text="Seen within HOST_DOWN_AFTER_SECONDS.")
    series_count = serializers.IntegerField(read_only=True, help_text="Series stored for this host.")
    limit_refusals = serializers.SerializerMethodField(
        help_text="What the workers refused from this host over a per-host limit, by reason "
        "(README 'Per-host limits'); null when Redis cannot be read."
    )

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
            "limit_refusals",
        ]
        read_only_fields = fields

    @extend_schema_field(
        {"type": "object", "additionalProperties": {"type": "integer"}, "nullable": True}  # type: ignore[arg-type]
    )
    def get_limit_refusals(self, host: Host) -> dict[str, int] | None:
        """Read the counters of every host on the page at once (once per response)."""
        cache = self.context.get("_limit_refusals", False)
        if cache is False:
            page = self.parent.instance if self.parent is not None else None
            hosts = list(page) if page is not None else [host]
            cache = host_refusals.for_hosts([h.agent_id for h in hosts])
            self.context["_limit_refusals"] = cache
        if cache is None:
            return None
        found = cache.get(host.agent_id)
        return dict(found.counts) if found else {}
