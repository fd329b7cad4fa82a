"""List responses in the seed's shape: {"success": true, "data": [...], "count": N, ...}."""

from __future__ import annotations

from typing import Any

from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response

from collector_server.monitoring.api import params

MAX_OFFSET = 10_000_000


class CheckedLimitOffsetPagination(LimitOffsetPagination):
    """DRF's limit/offset paging, but a bad ``limit`` or ``offset`` is a 400 naming it.

    DRF falls back to the defaults without a word, so a script asking for ``limit=abc`` or
    ``offset=-5`` would silently get another page than it asked for.
    """

    default_limit = 100
    max_limit = 1000

    def get_limit(self, request: Request) -> int:
        return params.integer(
            request.query_params, self.limit_query_param, self.default_limit, 1, self.max_limit
        )

    def get_offset(self, request: Request) -> int:
        return params.integer(request.query_params, self.offset_query_param, 0, 0, MAX_OFFSET)


class EnvelopePagination(CheckedLimitOffsetPagination):
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
