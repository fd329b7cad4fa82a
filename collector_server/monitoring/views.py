"""The web dashboard: a server-rendered page that polls the monitoring API."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

POLL_SECONDS = 30


@login_required
@ensure_csrf_cookie
def dashboard(request: HttpRequest) -> HttpResponse:
    """Render the dashboard shell; static/fleetwatch/dashboard.js fills it from the API."""
    return render(request, "fleetwatch/dashboard.html", {"poll_seconds": POLL_SECONDS})
