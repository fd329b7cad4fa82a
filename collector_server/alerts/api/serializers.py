"""Serializers that defer domain validation to the models' clean(), so the admin and the API agree."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ManyToManyField
from rest_framework import serializers

from alerting_worker.alerting import transports
from collector_server.alerts import log_query
from collector_server.alerts.models import Alert, AlertEvent, AlertRule, Channel, Silence

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


class AlertRuleSerializer(ModelCleanMixin, serializers.ModelSerializer):
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
    metadata = serializers.SerializerMethodField()
    logs_url = serializers.SerializerMethodField(
        help_text="For a log_count rule: the log search listing the records of the last breached window."
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
        ]
        read_only_fields = fields

    def get_logs_url(self, alert: Alert) -> str | None:
        return log_query.alert_logs_url(alert)

    def get_metadata(self, alert: Alert) -> dict[str, Any]:
        return {"value": alert.value, "annotations": alert.annotations, "created_by": alert.created_by}


class ManualAlertSerializer(serializers.Serializer):
    """A client-raised alert (the seed's POST /alerts)."""

    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    summary = serializers.CharField(required=False, allow_blank=True, default="")
    severity = serializers.ChoiceField(choices=[s for s, _ in Alert._meta.get_field("severity").choices])
    labels = serializers.DictField(child=serializers.CharField(), required=False, default=dict)
    value = serializers.FloatField(required=False, allow_null=True, default=None)


class AcknowledgeSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


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


class SilenceSerializer(ModelCleanMixin, serializers.ModelSerializer):
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


class ChannelSerializer(ModelCleanMixin, serializers.ModelSerializer):
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
        if self.instance is not None and "config" in attrs and isinstance(attrs["config"], dict):
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
