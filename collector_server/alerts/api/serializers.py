"""Serializers that defer domain validation to the models' clean(), so the admin and the API agree."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ManyToManyField
from rest_framework import serializers

from alerting_worker.alerting import transports
from collector_server.alerts import log_query
from collector_server.alerts.models import (
    SEVERITIES,
    SEVERITY_ALIASES,
    Alert,
    AlertEvent,
    AlertRule,
    Channel,
    Silence,
)
from collector_server.monitoring.api.strict import RejectUnknownFieldsMixin

SECRET_MASK = "********"


class ModelCleanMixin:
    """Run the model's full_clean() on the would-be instance and report its errors by field."""

    clean_exclude: tuple[str, ...] = ()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        model = self.Meta.model
        plain = {k: v for k, v in attrs.items() if not isinstance(model._meta.get_field(k), ManyToManyField)}
        current = _current(self.instance, model)
        for name in plain:  # a related field given by name replaces its stored id (fallback, not fallback_id)
            current.pop(model._meta.get_field(name).attname, None)
        instance = model(**{**current, **plain})
        instance._state.adding = self.instance is None  # constraints then leave the stored row itself out
        try:
            instance.full_clean(exclude=list(self.clean_exclude), validate_unique=False)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        for name in plain:  # keep what clean() normalized (matchers, query defaults, config)
            attrs[name] = getattr(instance, name)
        return attrs


def _current(instance: Any, model: Any) -> dict[str, Any]:
    if instance is None:
        return {}
    return {
        f.attname: getattr(instance, f.attname)
        for f in model._meta.concrete_fields
        if not f.primary_key or f.name == "id"
    }


class AlertRuleSerializer(RejectUnknownFieldsMixin, ModelCleanMixin, serializers.ModelSerializer):
    channels = serializers.PrimaryKeyRelatedField(many=True, queryset=Channel.objects.all(), required=False)

    class Meta:
        model = AlertRule
        fields = [
            "id",
            "name",
            "description",
            "severity",
            "enabled",
            "query_type",
            "query",
            "comparison",
            "threshold",
            "recovery_threshold",
            "for_seconds",
            "keep_firing_for_seconds",
            "nodata_policy",
            "nodata_timeout_seconds",
            "labels",
            "annotations",
            "channels",
            "repeat_interval_seconds",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]


class AlertSerializer(serializers.ModelSerializer):
    status = serializers.CharField(source="display_state", read_only=True)
    rule = serializers.PrimaryKeyRelatedField(read_only=True)
    created_at = serializers.DateTimeField(source="started_at", read_only=True)
    fingerprint = serializers.CharField(
        source="label_fingerprint", read_only=True, help_text="Alertmanager's fingerprint of the labels."
    )
    metadata = serializers.SerializerMethodField()
    logs_url = serializers.SerializerMethodField(
        help_text="For a log_count rule: the /logs/ page listing the records of the last breached window."
    )
    logs_api_url = serializers.SerializerMethodField(
        help_text="The same records from the log search API (/api/v1/logs/search)."
    )

    class Meta:
        model = Alert
        fields = [
            "id",
            "name",
            "description",
            "summary",
            "severity",
            "state",
            "status",
            "labels",
            "value",
            "rule",
            "manual",
            "source",
            "fingerprint",
            "created_at",
            "updated_at",
            "fired_at",
            "resolved_at",
            "acknowledged_by",
            "acknowledged_at",
            "ack_comment",
            "resolved_by",
            "silenced",
            "inhibited",
            "flapping",
            "metadata",
            "logs_url",
            "logs_api_url",
        ]
        read_only_fields = fields

    def get_logs_url(self, alert: Alert) -> str | None:
        return log_query.alert_logs_url(alert)

    def get_logs_api_url(self, alert: Alert) -> str | None:
        return log_query.alert_logs_url(alert, log_query.SEARCH_PATH)

    def get_metadata(self, alert: Alert) -> dict[str, Any]:
        return {"value": alert.value, "annotations": alert.annotations, "created_by": alert.created_by}


class ManualAlertSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """A client-raised alert: the seed 000 body (``name``) or the seed 004 body (``alertType``).

    Seed 004's ``message`` is the summary, ``endpointId`` and ``modelName`` become the labels
    ``endpoint_id`` and ``model``, ``metadata`` the annotations; its severity ``warning`` is
    fleetwatch's ``medium`` (see SEVERITY_ALIASES).
    """

    name = serializers.CharField(max_length=200, required=False)
    alertType = serializers.CharField(max_length=200, required=False, help_text="Seed 004: the alert's name.")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    summary = serializers.CharField(required=False, allow_blank=True, default="")
    message = serializers.CharField(required=False, allow_blank=True, help_text="Seed 004: the summary.")
    severity = serializers.ChoiceField(choices=[*SEVERITIES, *SEVERITY_ALIASES])
    labels = serializers.DictField(child=serializers.CharField(), required=False, default=dict)
    endpointId = serializers.CharField(required=False, help_text="Seed 004: the label endpoint_id.")
    modelName = serializers.CharField(required=False, help_text="Seed 004: the label model.")
    metadata = serializers.DictField(required=False, help_text="Seed 004: kept as the alert's annotations.")
    value = serializers.FloatField(required=False, allow_null=True, default=None)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        name = attrs.pop("name", None) or attrs.pop("alertType", None)
        if not name:
            raise serializers.ValidationError({"name": ["required (or alertType)"]})
        labels = dict(attrs["labels"])
        for field, label in (("endpointId", "endpoint_id"), ("modelName", "model")):
            if field in attrs:
                labels[label] = attrs.pop(field)
        metadata = attrs.pop("metadata", {})
        return {
            **attrs,
            "name": name,
            "severity": SEVERITY_ALIASES.get(attrs["severity"], attrs["severity"]),
            "summary": attrs["summary"] or attrs.pop("message", "") or "",
            "labels": labels,
            "annotations": {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()},
        }


class AcknowledgeSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class ResolveSerializer(AcknowledgeSerializer):
    """The body of resolve: an optional comment."""


class AlertEventSerializer(serializers.ModelSerializer):
    alert_name = serializers.CharField(source="alert.name", read_only=True)
    labels = serializers.JSONField(source="alert.labels", read_only=True)

    class Meta:
        model = AlertEvent
        fields = [
            "id",
            "alert",
            "alert_name",
            "rule",
            "labels",
            "from_state",
            "to_state",
            "value",
            "at",
            "actor",
            "note",
        ]
        read_only_fields = fields


class SilenceSerializer(RejectUnknownFieldsMixin, ModelCleanMixin, serializers.ModelSerializer):
    active = serializers.SerializerMethodField()

    class Meta:
        model = Silence
        fields = [
            "id",
            "matchers",
            "starts_at",
            "ends_at",
            "recurrence_days",
            "window_start",
            "window_minutes",
            "created_by",
            "comment",
            "created_at",
            "active",
        ]
        read_only_fields = ["created_by", "created_at"]

    def get_active(self, silence: Silence) -> bool:
        from django.utils import timezone

        return silence.is_active(timezone.now())


class ChannelSerializer(RejectUnknownFieldsMixin, ModelCleanMixin, serializers.ModelSerializer):
    """Secrets (SMTP password, webhook URLs, routing keys) are write-only: reads show them masked."""

    config = serializers.JSONField(write_only=True)
    settings = serializers.SerializerMethodField()

    class Meta:
        model = Channel
        fields = [
            "id",
            "name",
            "kind",
            "config",
            "settings",
            "enabled",
            "is_default",
            "fallback",
            "group_by",
            "group_wait_seconds",
            "group_interval_seconds",
            "repeat_interval_seconds",
            "rate_limit_per_hour",
            "suppressed_count",
            "status",
            "last_error",
            "created_at",
        ]
        read_only_fields = ["suppressed_count", "status", "last_error", "created_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "config" in attrs and not isinstance(attrs["config"], dict):
            raise serializers.ValidationError({"config": ["must be an object of the kind's settings"]})
        if self.instance is not None and "config" in attrs and isinstance(attrs["config"], dict):
            _require_secrets_for_new_destination(
                self.instance, attrs.get("kind", self.instance.kind), attrs["config"]
            )
            # A partial config keeps the stored secrets the client cannot see.
            kept = {
                k: v for k, v in self.instance.config.items() if attrs["config"].get(k) in (None, SECRET_MASK)
            }
            attrs["config"] = {**attrs["config"], **kept}
        return super().validate(attrs)

    def get_settings(self, channel: Channel) -> dict[str, Any]:
        try:
            secret = transports.get(channel.kind).secret_fields
        except ValueError:
            secret = ()
        return {k: (SECRET_MASK if k in secret and v else v) for k, v in (channel.config or {}).items()}


def _require_secrets_for_new_destination(channel: Channel, kind: str, config: dict[str, Any]) -> None:
    """Refuse a change of destination (or kind) that would send a stored secret somewhere new.

    Otherwise anyone allowed to edit a channel could point it at their own server and press
    "test" to receive the SMTP password, the routing key or the webhook's headers.
    """
    try:
        transport = transports.get(kind)
    except ValueError:
        return  # the model's clean() names the unknown kind
    stored = channel.config or {}
    moved = [
        f
        for f in transport.destination_fields
        if f in config and config[f] not in (None, SECRET_MASK, stored.get(f))
    ]
    if kind != channel.kind:
        moved.append("kind")
    if not moved:
        return
    missing = [
        f
        for f in transport.secret_fields
        if f not in moved and stored.get(f) and config.get(f) in (None, SECRET_MASK)
    ]
    if missing:
        raise serializers.ValidationError(
            {
                "config": f"changing {' and '.join(moved)} requires {' and '.join(missing)} again "
                "(a stored secret is never sent to a new destination)"
            }
        )
