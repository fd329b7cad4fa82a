"""Error bodies a client can act on: every 4xx names what is wrong."""

from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class BadParameter(ValidationError):
    """A query parameter is invalid: a 400 naming it."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__({name: [problem]})


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Add success=false and a one-line 'error' to DRF's error bodies."""
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict):
        message = _first_error(data)
        response.data = {"success": False, "error": message, "detail": data}
    elif isinstance(data, list):
        response.data = {"success": False, "error": "; ".join(str(x) for x in data), "detail": data}
    if response.status_code == status.HTTP_400_BAD_REQUEST and "error" not in response.data:
        response.data["error"] = "invalid request"
    return response


def _first_error(data: dict[str, Any]) -> str:
    if "detail" in data and len(data) == 1:
        return str(data["detail"])
    for key, value in data.items():
        if isinstance(value, list) and value:
            value = value[0]
        if isinstance(value, dict):
            return f"{key}: {_first_error(value)}"
        return f"{key}: {value}" if key != "non_field_errors" else str(value)
    return "invalid request"
