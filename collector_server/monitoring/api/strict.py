"""Refuse unknown body fields: ``group_wait`` for ``group_wait_seconds`` is a 400, never dropped.

Every serializer that reads a request body mixes in ``RejectUnknownFieldsMixin``; a name that is
not one of its fields (read-only ones included, so a client may send back what it read) is a
400 naming it and listing the accepted ones. tests/server/test_unknown_body_fields.py sends an
unknown field to every write operation of the OpenAPI schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers


class RejectUnknownFieldsMixin:
    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))  # type: ignore[attr-defined]
            if unknown:
                accepted = ", ".join(sorted(self.fields))  # type: ignore[attr-defined]
                raise serializers.ValidationError(
                    {name: [f"unknown field; accepted: {accepted}"] for name in unknown}
                )
        return super().to_internal_value(data)  # type: ignore[misc]


class EmptyBodySerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """The body of an action that takes none: ``{}`` or nothing."""
