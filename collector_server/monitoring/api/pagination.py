"""List responses in the seed's shape: {"success": true, "data": [...], "count": N, ...}."""

from __future__ import annotations

from typing import Any

from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response


class EnvelopePagination(LimitOffsetPagination):
    default_limit = 100
    max_limit = 1000

    def get_paginated_response(self, data: list[Any]) -> Response:
        return Response(
            {
                "success": True,
                "data": data,
                "count": self.count,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
            }
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["success", "data", "count"],
            "properties": {
                "success": {"type": "boolean"},
                "data": schema,
                "count": {"type": "integer"},
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
            },
        }
