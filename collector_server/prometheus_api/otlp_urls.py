"""Routes under /otlp/ (an OTLP/HTTP exporter's endpoint is http://<server>/otlp)."""

from __future__ import annotations

from django.urls import path

from collector_server.prometheus_api.write_views import OtlpView

app_name = "otlp"

urlpatterns = [
    path("v1/metrics", OtlpView.as_view(signal="metrics"), name="metrics"),
    path("v1/logs", OtlpView.as_view(signal="logs"), name="logs"),
    path("v1/traces", OtlpView.as_view(signal="traces"), name="traces"),
]
