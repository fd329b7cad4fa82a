from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from collector_server.monitoring import prometheus, views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("admin/", admin.site.urls),
    path("metrics", prometheus.metrics_view, name="prometheus-metrics"),
    path("api/v1/monitoring/", include("collector_server.monitoring.api.urls")),
    path("api/v1/monitoring/", include("collector_server.alerts.api.urls")),
    path("api/v1/monitoring/", include("collector_server.logs.api.monitoring_urls")),
    path("api/v1/logs/", include("collector_server.logs.api.urls")),
    path("api/v1/", include("collector_server.orgs.api.urls")),
    # The seed documents' unversioned alert paths (POST alerts, PUT alerts/{id}/resolve), an alias.
    path("api/monitoring/", include("collector_server.alerts.api.seed_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api-auth/", include("rest_framework.urls")),
]
