"""Give every request a scope: nothing until the caller is known, reset when the response leaves."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import get_resolver
from rest_framework.exceptions import APIException

from collector_server.orgs import audit
from collector_server.orgs.resolve import requested_slug, scope_for
from collector_server.orgs.scope import NOTHING, activate, deactivate


class OrganizationScopeMiddleware:
    """After AuthenticationMiddleware: a session user's scope; DRF's permission class sets a token's."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        # Import every view now, outside any request: class-level querysets must not be built
        # under the first request's scope (see scope.OrgQuerySet).
        get_resolver().url_patterns  # noqa: B018

    def __call__(self, request: HttpRequest) -> HttpResponse:
        scope = NOTHING
        user = getattr(request, "user", None)
        resolved_for = user
        if user is not None and user.is_authenticated:
            try:
                scope = scope_for(user, None, requested_slug(request))
            except APIException:
                scope = NOTHING  # a bad selection: plain views see nothing, DRF resolves again and says why
                resolved_for = None
        request.fleetwatch_scope = scope
        request.fleetwatch_scope_user = resolved_for
        token = activate(scope)
        actor_token = audit.set_actor_source(request)
        try:
            return self.get_response(request)
        finally:
            audit.reset_actor_source(actor_token)
            deactivate(token)
