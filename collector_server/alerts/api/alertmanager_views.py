"""POST /api/v1/monitoring/alertmanager/webhook: an Alertmanager's webhook receiver.

Point an Alertmanager ``webhook_config`` here with ``http_config.authorization``
(``type: Token``, ``credentials: <a fleetwatch API token>``); its alerts then appear,
read-only, in the alert list and history (``source: alertmanager``), in the token's
organisation; posting needs the operator role there.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from collector_server.alerts import inbound
from collector_server.orgs import roles, scope
from collector_server.orgs.views import creation_organization

WEBHOOK_STATUSES = [("firing", "firing"), ("resolved", "resolved")]
GO_ZERO_YEAR = 1  # Alertmanager's "no end" is Go's zero time, 0001-01-01T00:00:00Z


class WebhookAlertSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=WEBHOOK_STATUSES)
    labels = serializers.DictField(child=serializers.CharField(allow_blank=True))
    annotations = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)
    startsAt = serializers.DateTimeField()
    endsAt = serializers.DateTimeField(required=False, allow_null=True)
    generatorURL = serializers.CharField(required=False, allow_blank=True)
    fingerprint = serializers.CharField(required=False, allow_blank=True)

    def validate_labels(self, labels: dict[str, str]) -> dict[str, str]:
        if not labels.get("alertname"):
            raise serializers.ValidationError("an alertname label is required")
        return labels

    def validate_endsAt(self, value: datetime | None) -> datetime | None:
        return None if value is None or value.year <= GO_ZERO_YEAR else value


class WebhookSerializer(serializers.Serializer):
    """Alertmanager's webhook body (version 4); fields fleetwatch does not use are ignored."""

    version = serializers.CharField()
    status = serializers.ChoiceField(choices=WEBHOOK_STATUSES)
    receiver = serializers.CharField(required=False, allow_blank=True)
    groupKey = serializers.CharField(required=False, allow_blank=True)
    alerts = WebhookAlertSerializer(many=True)

    def validate_version(self, version: str) -> str:
        if version != "4":
            raise serializers.ValidationError(f"webhook version {version!r} is not supported (use 4)")
        return version


class AlertmanagerWebhookView(APIView):
    """Record the alerts of an Alertmanager notification (read-only alerts, source alertmanager)."""

    required_roles = {"post": roles.OPERATOR}

    @extend_schema(
        request=WebhookSerializer,
        responses={
            200: inline_serializer(
                "AlertmanagerWebhookResult",
                {
                    "success": serializers.BooleanField(),
                    "data": inline_serializer(
                        "AlertmanagerWebhookCounts",
                        {
                            name: serializers.IntegerField()
                            for name in ("opened", "refreshed", "resolved", "ignored")
                        },
                    ),
                },
            )
        },
    )
    def post(self, request: Request) -> Response:
        body = WebhookSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        alerts: list[dict[str, Any]] = body.validated_data["alerts"]
        org_id = creation_organization(request, self)
        with scope.use_organization(org_id):  # the episodes looked up and opened: this organisation's
            result = inbound.apply(alerts, timezone.now())
        return Response({"success": True, "data": asdict(result)})
