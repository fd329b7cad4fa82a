"""The OpenAPI generator: every operation also declares the errors it can answer.

- 400 (a bad parameter or body, named in the body) for every operation: each GET refuses unknown
  query parameters, each write validates its body;
- 401 and 403 for every operation that needs authentication;
- 404 for every operation with a path parameter.

Their body is ``ErrorSerializer``, the shape ``errors.exception_handler`` gives every 4xx.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    success = serializers.BooleanField(help_text="Always false.")
    error = serializers.CharField(help_text="One line naming the parameter or field and the problem.")
    detail = serializers.JSONField(required=False, help_text="DRF's error detail, by field.")


ERROR_DESCRIPTIONS = {
    "400": "Bad parameter or body; `error` names it.",
    "401": "No or invalid credentials.",
    "403": "Authenticated, but not allowed.",
    "404": "No such object.",
}


class FleetwatchAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        codes = ["400"]
        if self.get_auth():
            codes += ["401", "403"]
        if "{" in self.path:
            codes.append("404")
        for code in codes:
            if code not in responses:
                response = self._get_response_for_code(ErrorSerializer, code, direction=direction)
                response["description"] = ERROR_DESCRIPTIONS[code]
                responses[code] = response
        return responses


def envelope(name: str, data: Any, count: bool = False, **extra: serializers.Field) -> serializers.Serializer:
    """The schema of ``{"success": true, "data": <data>[, "count": N]}`` (the seeds' response shape).

    Marked ``many=False`` so that drf-spectacular does not wrap a list action's envelope in its
    paginator's ``{count, next, previous, results}``: the envelope is what the view returns.
    """
    from drf_spectacular.utils import extend_schema_serializer

    fields: dict[str, Any] = {"success": serializers.BooleanField(), "data": data}
    if count:
        fields["count"] = serializers.IntegerField()
    cls = type(name, (serializers.Serializer,), {**fields, **extra})
    return extend_schema_serializer(many=False)(cls)()


def message_envelope(name: str) -> serializers.Serializer:
    """``{"success": bool, "message": str}`` (operator actions)."""
    from drf_spectacular.utils import inline_serializer

    return inline_serializer(
        name, {"success": serializers.BooleanField(), "message": serializers.CharField()}
    )
