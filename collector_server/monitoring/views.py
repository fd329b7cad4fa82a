"""The web dashboard: a server-rendered page that polls the monitoring API."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.views.decorators.csrf import ensure_csrf_cookie

from collector_server.orgs.session import organization_choice, switch_organization

POLL_SECONDS = 30


@login_required
@ensure_csrf_cookie
def dashboard(request: HttpRequest) -> HttpResponse:
    """Render the dashboard shell; static/fleetwatch/dashboard.js fills it from the API.

    ``?organization=<slug>`` keeps that organisation as the session's choice (empty: all of yours).
    """
    if "organization" in request.GET:
        if not switch_organization(request, request.GET["organization"]):
            return HttpResponseForbidden("you are not a member of that organisation")
        return redirect("dashboard")
    context = {"poll_seconds": POLL_SECONDS, **organization_choice(request)}
    return render(request, "fleetwatch/dashboard.html", context)
