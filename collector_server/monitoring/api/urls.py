"""Routes of the monitoring API, mounted at /api/v1/monitoring/."""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from collector_server.monitoring.api.dashboard_views import OverviewView
from collector_server.monitoring.api.health_views import HealthView
from collector_server.monitoring.api.host_views import HostViewSet
from collector_server.monitoring.api.metrics_views import SummaryView, SystemMetricsView
from collector_server.monitoring.api.query_views import QueryView

router = SimpleRouter(trailing_slash=False)
router.register("hosts", HostViewSet, basename="host")

urlpatterns = [
    path("health", HealthView.as_view(), name="monitoring-health"),
    path("metrics/system", SystemMetricsView.as_view(), name="monitoring-metrics-system"),
    path("metrics/summary", SummaryView.as_view(), name="monitoring-metrics-summary"),
    path("dashboard/overview", OverviewView.as_view(), name="monitoring-dashboard-overview"),
    path("query", QueryView.as_view(), name="monitoring-query"),
    *router.urls,
]
