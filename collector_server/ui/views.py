"""The pages: server-rendered shells whose scripts read the API and the chart-data endpoints."""

from __future__ import annotations

import functools
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.templatetags.static import static
from django.views.decorators.csrf import ensure_csrf_cookie

from collector_server.alerts import query as rule_queries
from collector_server.alerts.models import COMPARISONS, SEVERITIES, Alert, AlertRule
from collector_server.monitoring import query
from collector_server.monitoring.models import Host, Series
from collector_server.orgs.session import organization_choice, switch_organization
from collector_server.ui import charts, endpoint_charts, model_charts, ranges

REFRESH_SECONDS = 30
# The /models/ page's charts from the models API's series endpoint (figure, title, unit);
# "error_percent" is the page's errors / requests of that endpoint.
MODEL_FIGURES = (
    ("requests", "Requests per second", "req/s"),
    ("error_percent", "Errors", "%"),
    ("tokens", "Tokens per second (in / out)", "tok/s"),
    ("latency_p95", "Latency p95", "s"),
    ("ttft_p95", "Time to first token p95", "s"),
    ("cost", "Cost per step", "USD"),
)


def _page(request: HttpRequest, template: str, page: str, **extra: Any) -> HttpResponse:
    context = {
        **organization_choice(request),
        "page": page,
        "ranges": list(ranges.RANGES),
        "default_range": ranges.DEFAULT_RANGE,
        "refresh_seconds": REFRESH_SECONDS,
        **extra,
    }
    return render(request, f"ui/{template}", context)


def page_view(view):
    """A page: logged in, with the CSRF cookie its scripts send back on actions.

    ``?organization=<slug>`` keeps that organisation as the session's choice (empty: all of
    yours) and comes back to the page without it.
    """

    @functools.wraps(view)
    def choosing(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if "organization" in request.GET:
            if not switch_organization(request, request.GET["organization"]):
                return HttpResponseForbidden("you are not a member of that organisation")
            return HttpResponseRedirect(request.path)
        return view(request, *args, **kwargs)

    return login_required(ensure_csrf_cookie(choosing))


@page_view
def fleet(request: HttpRequest) -> HttpResponse:
    return _page(request, "fleet.html", "fleet")


@page_view
def host(request: HttpRequest, hostname: str) -> HttpResponse:
    row = Host.objects.filter(hostname=hostname).first()
    if row is None:
        raise Http404(f"no host named {hostname!r}")
    present = {
        group
        for group, prefix in charts.OPTIONAL_GROUPS.items()
        if Series.objects.filter(name__startswith=prefix, labels__host=hostname).exists()
    }
    shown = [
        c.describe()
        for c in charts.HOST_CHARTS
        if c.group not in charts.OPTIONAL_GROUPS or c.group in present
    ]
    return _page(request, "host.html", "host", host=row, charts=shown)


@page_view
def alerts(request: HttpRequest) -> HttpResponse:
    rules = AlertRule.objects.order_by("name").values("id", "name")
    states = [s for s, _ in Alert.STATE_CHOICES]
    return _page(request, "alerts.html", "alerts", severities=SEVERITIES, states=states, rules=rules)


@page_view
def logs(request: HttpRequest) -> HttpResponse:
    return _page(request, "logs.html", "logs")


@page_view
def request_logs(request: HttpRequest, request_id: str) -> HttpResponse:
    return _page(request, "request.html", "request", request_id=request_id)


@page_view
def explore(request: HttpRequest) -> HttpResponse:
    return _page(request, "explore.html", "explore", aggregations=query.AGGREGATIONS)


@page_view
def endpoints(request: HttpRequest) -> HttpResponse:
    shown = [c.describe() for c in endpoint_charts.ENDPOINT_CHARTS]
    return _page(request, "endpoints.html", "endpoints", charts=shown)


@page_view
def models(request: HttpRequest) -> HttpResponse:
    # The KV-cache chart only where a model server reports it.
    has_kv = Series.objects.filter(name=model_charts.llm.KV_CACHE).exists()
    kv_chart = model_charts.KV_CACHE_CHART.describe() if has_kv else None
    return _page(request, "models.html", "models", kv_chart=kv_chart, model_figures=MODEL_FIGURES)


@page_view
def rule_editor(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    rule = get_object_or_404(AlertRule, pk=pk) if pk is not None else None
    return _page(
        request,
        "rule.html",
        "rule",
        rule_id=rule.pk if rule else None,
        aggregations=rule_queries.AGGREGATIONS,
        comparisons=list(COMPARISONS),
        severities=SEVERITIES,
    )


def favicon(request: HttpRequest) -> HttpResponse:
    return HttpResponseRedirect(static("ui/favicon.svg"))
