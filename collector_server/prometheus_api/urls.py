"""Routes under /prometheus/ (the URL a Grafana Prometheus data source is given)."""

from __future__ import annotations

from django.urls import path

from collector_server.prometheus_api import views, write_views

app_name = "prometheus-api"

urlpatterns = [
    path("api/v1/query", views.QueryView.as_view(), name="query"),
    path("api/v1/query_range", views.QueryRangeView.as_view(), name="query-range"),
    path("api/v1/series", views.SeriesView.as_view(), name="series"),
    path("api/v1/labels", views.LabelsView.as_view(), name="labels"),
    path("api/v1/label/<str:name>/values", views.LabelValuesView.as_view(), name="label-values"),
    path("api/v1/metadata", views.MetadataView.as_view(), name="metadata"),
    path("api/v1/write", write_views.RemoteWriteView.as_view(), name="remote-write"),
    path("api/v1/status/buildinfo", views.BuildInfoView.as_view(), name="buildinfo"),
]
