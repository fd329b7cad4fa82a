"""The body of POST /api/monitoring/dashboard/inference, checked strictly (every 4xx names the field)."""

from __future__ import annotations

import math
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from collector_server.monitoring.api.strict import RejectUnknownFieldsMixin
from shared import inference as c

MAX_DURATION_S = 86_400.0
MAX_TOKENS = 10**9
MAX_COST = 1e6
MAX_TEXT = 200


@extend_schema_field(OpenApiTypes.NUMBER)
class StrictNumberField(serializers.Field):
    """A JSON number (not a string, not a boolean), finite, within [minimum, maximum]."""

    def __init__(self, minimum: float, maximum: float, integer: bool = False, **kwargs: Any) -> None:
        self.minimum, self.maximum, self.integer = minimum, maximum, integer
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> float | int:
        kind = "a whole number" if self.integer else "a number"
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise serializers.ValidationError(f"must be {kind}, not {type(data).__name__}")
        if not math.isfinite(data):
            raise serializers.ValidationError("must be finite")
        if self.integer and data != int(data):
            raise serializers.ValidationError(f"must be {kind}, got {data!r}")
        if not self.minimum <= data <= self.maximum:
            raise serializers.ValidationError(
                f"must be between {self.minimum:g} and {self.maximum:g}, got {data!r}"
            )
        return int(data) if self.integer else float(data)

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field(OpenApiTypes.INT)
class StrictIntegerField(StrictNumberField):
    def __init__(self, minimum: int, maximum: int, **kwargs: Any) -> None:
        super().__init__(minimum, maximum, integer=True, **kwargs)


class StrictTextField(serializers.CharField):
    """A JSON string (no number or boolean coerced), without control characters."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise serializers.ValidationError(f"must be a string, not {type(data).__name__}")
        if not c.LABEL_VALUE_RE.match(data):
            raise serializers.ValidationError("must not contain control characters")
        return super().to_internal_value(data)


DURATION_FIELDS = ("duration", "duration_seconds", "duration_ms")


class InferenceSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    model = StrictTextField(max_length=c.MAX_MODEL_LENGTH, help_text="The model's name, e.g. qwen2.5:7b.")
    duration = StrictNumberField(
        0.0,
        MAX_DURATION_S * 1000,
        required=False,
        help_text="Milliseconds the inference took, as the seed's clients send it (120 = 0.12 s).",
    )
    duration_seconds = StrictNumberField(
        0.0, MAX_DURATION_S, required=False, help_text="Seconds; the alternative to duration."
    )
    duration_ms = StrictNumberField(
        0.0,
        MAX_DURATION_S * 1000,
        required=False,
        help_text="Milliseconds; an accepted alias of duration (kept for existing callers).",
    )
    cost = StrictNumberField(
        0.0,
        MAX_COST,
        required=False,
        allow_null=True,
        help_text="USD; left out: priced from the price table.",
    )
    organization = StrictTextField(
        max_length=c.MAX_ORGANIZATION_LENGTH,
        required=False,
        allow_blank=True,
        default="",
        help_text="The customer organisation (a label); empty when not given.",
    )
    input_tokens = StrictIntegerField(0, MAX_TOKENS, required=False, allow_null=True)
    output_tokens = StrictIntegerField(0, MAX_TOKENS, required=False, allow_null=True)
    time_to_first_token = StrictNumberField(
        0.0,
        MAX_DURATION_S,
        required=False,
        allow_null=True,
        help_text="Seconds to the first token (streaming).",
    )
    status = serializers.ChoiceField(choices=list(c.STATUSES), required=False, default=c.OK)
    user = StrictTextField(
        max_length=MAX_TEXT, required=False, allow_blank=True, help_text="Log record only."
    )
    api_key_label = StrictTextField(
        max_length=MAX_TEXT,
        required=False,
        allow_blank=True,
        help_text="A name for the key, never the key; log only.",
    )
    request_id = StrictTextField(max_length=MAX_TEXT, required=False, allow_blank=True)

    def validate_model(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("must not be blank")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        sent = [name for name in DURATION_FIELDS if name in attrs]
        if len(sent) > 1:
            message = f"send one of duration (ms), duration_seconds or duration_ms, not {' and '.join(sent)}"
            raise serializers.ValidationError({name: [message] for name in sent})
        if not sent:
            raise serializers.ValidationError(
                {"duration": ["required (milliseconds; or duration_seconds in seconds)"]}
            )
        # Internally the duration is seconds from here on.
        if "duration_seconds" in attrs:
            attrs["duration"] = attrs.pop("duration_seconds")
        else:
            attrs["duration"] = attrs.pop(sent[0]) / 1000.0
        ttft = attrs.get("time_to_first_token")
        if ttft is not None and ttft > attrs["duration"]:
            raise serializers.ValidationError(
                {"time_to_first_token": [f"{ttft!r} s is longer than the duration ({attrs['duration']!r} s)"]}
            )
        return attrs


class RecordedSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    recorded_at = serializers.FloatField(help_text="Unix seconds of the stored points.")
    series = serializers.IntegerField(help_text="Counter series updated.")
    cost_source = serializers.ChoiceField(choices=["reported", "price_table", "none"])


class ModelsAnswerSerializer(serializers.Serializer):
    """GET /api/v1/monitoring/models (the rows are described in docs/inference.md)."""

    success = serializers.BooleanField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    seconds = serializers.FloatField()
    by = serializers.ChoiceField(choices=["model", "organization"])
    count = serializers.IntegerField(help_text="Rows in models.")
    models = serializers.ListField(
        child=serializers.DictField(), help_text="One row per model (and organisation)."
    )
    truncated = serializers.BooleanField(
        help_text="True when the scope holds more inference series than one answer reads (50,000): the "
        "figures cover only part of them; narrow the query with model or organization."
    )
