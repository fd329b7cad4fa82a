"""URLs of the Django view used by the middleware tests."""

from __future__ import annotations

import time

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from agent.sdk import StructuredLogger, set_context

log = StructuredLogger("dj.app")


def item(request: HttpRequest, item_id: int) -> JsonResponse:
    log.info("loading item", item_id=item_id)
    return JsonResponse({"id": item_id})


def slow(request: HttpRequest) -> HttpResponse:
    time.sleep(0.12)
    return HttpResponse("slow")


def broken(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("view failed")


def guarded(request: HttpRequest, code: int) -> HttpResponse:
    """Answers ``code`` (401, 403, 429, ...); ``?ctx=`` puts an organisation in the log context first."""
    if request.GET.get("ctx"):
        set_context(organization=request.GET["ctx"])
    return HttpResponse("no", status=code)


urlpatterns = [
    path("api/guarded/<int:code>/", guarded),
    path("api/items/<int:item_id>/", item),
    path("api/slow/", slow),
    path("api/broken/", broken),
]
