"""Routes under /api/v1/monitoring/ (models, the inference alias) and the seed's /api/monitoring/."""

from __future__ import annotations

from django.urls import path

from collector_server.inference.api import views

urlpatterns = [
    path("inference", views.RecordInferenceView.as_view(), name="inference-record"),
    path("models", views.ModelsView.as_view(), name="inference-models"),
    path("models/series", views.ModelSeriesView.as_view(), name="inference-models-series"),
    path("models/daily-cost", views.DailyCostView.as_view(), name="inference-models-daily-cost"),
]

seed_urlpatterns = [
    path("dashboard/inference", views.SeedRecordInferenceView.as_view(), name="seed-inference-record"),
]
