"""The UI's pages (mounted at the site root) and its chart-data endpoints under /ui/api/."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from collector_server.ui import api, views

urlpatterns = [
    path("", views.fleet, name="ui-fleet"),
    path("hosts/<str:hostname>/", views.host, name="ui-host"),
    path("alerts/", views.alerts, name="ui-alerts"),
    path("logs/", views.logs, name="ui-logs"),
    path("requests/<str:request_id>/", views.request_logs, name="ui-request"),
    path("explore/", views.explore, name="ui-explore"),
    path("endpoints/", views.endpoints, name="ui-endpoints"),
    path("models/", views.models, name="ui-models"),
    path("rules/new/", views.rule_editor, name="ui-rule-new"),
    path("rules/<int:pk>/", views.rule_editor, name="ui-rule"),
    path("login/", auth_views.LoginView.as_view(template_name="ui/login.html"), name="ui-login"),
    path("logout/", auth_views.LogoutView.as_view(), name="ui-logout"),
    path("favicon.ico", views.favicon, name="ui-favicon"),
    path("ui/api/chart", api.ChartView.as_view(), name="ui-api-chart"),
    path("ui/api/fleet", api.FleetView.as_view(), name="ui-api-fleet"),
    path("ui/api/metric-names", api.MetricNamesView.as_view(), name="ui-api-metric-names"),
    path("ui/api/labels", api.LabelsView.as_view(), name="ui-api-labels"),
    path("ui/api/health", api.HealthBadgeView.as_view(), name="ui-api-health"),
    path("ui/api/model-hosts", api.ModelHostsView.as_view(), name="ui-api-model-hosts"),
]
