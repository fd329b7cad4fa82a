"""OpenAPI: describe the token authentication (Bearer, or the same key after ``Token``)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

ORGANIZATION_HEADER = {
    "name": "X-Fleetwatch-Organization",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "Slug of the organisation to act in (a member of several, or a superuser); "
    "default: every organisation you belong to (writes: the one where your role is strongest).",
}


def add_organization_header(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Postprocessing hook: every operation takes the organisation-selection header."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict):
                operation.setdefault("parameters", []).append(dict(ORGANIZATION_HEADER))
    return result


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "collector_server.orgs.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token: `Authorization: Bearer <key>` (or `Token <key>`).",
        }
