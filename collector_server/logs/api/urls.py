"""Routes under /api/v1/logs/."""

from __future__ import annotations

from django.urls import path

from collector_server.logs.api import views

app_name = "logs-api"

urlpatterns = [
    path("search", views.LogSearchView.as_view(), name="search"),
    path("stats", views.LogStatsView.as_view(), name="stats"),
    path("requests/<str:request_id>", views.RequestLogsView.as_view(), name="request"),
]
