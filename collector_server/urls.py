from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from collector_server.inference.api import urls as inference_urls
from collector_server.monitoring import prometheus
from collector_server.monitoring.api import seed_health_views as seed_health
from collector_server.prometheus_api.federate import FederateView

urlpatterns = [
    path("", include("collector_server.ui.urls")),
    path("admin/", admin.site.urls),
    path("metrics", prometheus.metrics_view, name="prometheus-metrics"),
    path("api/v1/monitoring/", include("collector_server.monitoring.api.urls")),
    path("api/v1/monitoring/", include("collector_server.alerts.api.urls")),
    path("api/v1/monitoring/", include("collector_server.logs.api.monitoring_urls")),
    path("api/v1/monitoring/", include("collector_server.enrollments.api.urls")),
    path("api/v1/monitoring/", include("collector_server.inference.api.urls")),
    path("api/v1/logs/", include("collector_server.logs.api.urls")),
    path("api/v1/", include("collector_server.orgs.api.urls")),
    # The seed documents' unversioned alert paths (POST alerts, PUT alerts/{id}/resolve), an alias.
    path("api/monitoring/", include("collector_server.alerts.api.seed_urls")),
    # The seed's inference recording path (docs/inference.md), the same view as /api/v1/monitoring/inference.
    path("api/monitoring/", include(inference_urls.seed_urlpatterns)),
    path("prometheus/", include("collector_server.prometheus_api.urls")),
    path("federate", FederateView.as_view(), name="prometheus-federate"),
    path("otlp/", include("collector_server.prometheus_api.otlp_urls")),
    # The seed documents' health and metrics paths (docs/api.md, "Seed paths").
    path("api/v1/monitoring/status", seed_health.SeedHealthAlias.as_view(), name="seed-status"),
    path("api/health", seed_health.SeedHealthAlias.as_view(), name="seed-api-health"),
    path("api/metrics", prometheus.metrics_view, name="seed-api-metrics"),
    path("health", seed_health.basic_health, name="seed-health"),
    path("health/detailed", seed_health.detailed_health, name="seed-health-detailed"),
    path("health/metrics", seed_health.health_metrics, name="seed-health-metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    path("api-auth/", include("rest_framework.urls")),
]
