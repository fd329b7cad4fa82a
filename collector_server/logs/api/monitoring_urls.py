"""Routes of this app under /api/v1/monitoring/."""

from __future__ import annotations

from django.urls import path

from collector_server.logs.api import views

app_name = "logs-monitoring-api"

urlpatterns = [
    path("metrics/api", views.ApiMetricsView.as_view(), name="metrics-api"),
]
