"""Routes of the routing tree and escalation policies under /api/v1/monitoring/."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from rest_framework import serializers, viewsets
from rest_framework.exceptions import APIException

from collector_server.alerts.api.serializers import ModelCleanMixin
from collector_server.alerts.models import Channel, EscalationPolicy, EscalationStep, Route
from collector_server.monitoring.api.known_params import KnownQueryParamsMixin
from collector_server.monitoring.api.strict import RejectUnknownFieldsMixin
from collector_server.orgs.views import OrganizationScopedMixin


class GeneratedRoute(APIException):
    status_code = 409
    default_detail = "generated routes follow the rules' channel lists and default channels; edit those"


class RouteSerializer(RejectUnknownFieldsMixin, ModelCleanMixin, serializers.ModelSerializer):
    class Meta:
        model = Route
        fields = [
            "id",
            "parent",
            "position",
            "name",
            "matchers",
            "channel",
            "continue_matching",
            "group_by",
            "group_wait_seconds",
            "group_interval_seconds",
            "repeat_interval_seconds",
            "escalation",
            "rule",
            "generated",
        ]
        read_only_fields = ["rule", "generated"]


class RouteViewSet(OrganizationScopedMixin, KnownQueryParamsMixin, viewsets.ModelViewSet):
    """The caller's organisation's routing tree (one root per organisation); writes need admin."""

    lookup_value_regex = r"\d+"
    queryset = Route.objects.all()
    serializer_class = RouteSerializer
    filterset_fields = ["parent", "channel", "generated"]

    def perform_update(self, serializer: RouteSerializer) -> None:
        if serializer.instance.generated:
            raise GeneratedRoute()
        super().perform_update(serializer)

    def perform_destroy(self, instance: Route) -> None:
        if instance.generated:
            raise GeneratedRoute()
        instance.delete()


class StepSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    channel = serializers.PrimaryKeyRelatedField(queryset=Channel.objects.all())

    class Meta:
        model = EscalationStep
        fields = ["channel", "delay_minutes"]


class EscalationPolicySerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    """A policy and its steps in order; writing ``steps`` replaces them all."""

    steps = StepSerializer(many=True)

    class Meta:
        model = EscalationPolicy
        fields = ["id", "name", "description", "steps"]

    def validate_steps(self, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not steps:
            raise serializers.ValidationError("at least one step is required")
        return steps

    @transaction.atomic
    def create(self, validated: dict[str, Any]) -> EscalationPolicy:
        steps = validated.pop("steps")
        policy = EscalationPolicy.objects.create(**validated)
        self._write_steps(policy, steps)
        return policy

    @transaction.atomic
    def update(self, policy: EscalationPolicy, validated: dict[str, Any]) -> EscalationPolicy:
        steps = validated.pop("steps", None)
        for name, value in validated.items():
            setattr(policy, name, value)
        policy.save()
        if steps is not None:
            policy.steps.all().delete()
            self._write_steps(policy, steps)
        return policy

    def _write_steps(self, policy: EscalationPolicy, steps: list[dict[str, Any]]) -> None:
        if any(step["channel"].organization_id != policy.organization_id for step in steps):
            raise serializers.ValidationError({"steps": ["a step's channel belongs to another organisation"]})
        for position, step in enumerate(steps):
            EscalationStep.objects.create(policy=policy, position=position, **step)


class EscalationPolicyViewSet(OrganizationScopedMixin, KnownQueryParamsMixin, viewsets.ModelViewSet):
    lookup_value_regex = r"\d+"
    queryset = EscalationPolicy.objects.prefetch_related("steps").all()
    serializer_class = EscalationPolicySerializer
