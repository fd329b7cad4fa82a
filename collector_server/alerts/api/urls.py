"""Alerting routes, included under /api/v1/monitoring/."""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from collector_server.alerts.api import views
from collector_server.alerts.api.alertmanager_views import AlertmanagerWebhookView
from collector_server.alerts.api.routing_views import EscalationPolicyViewSet, RouteViewSet

app_name = "alerts-api"

router = SimpleRouter(trailing_slash=False)  # the seed paths have no trailing slash
router.register("alerts", views.AlertViewSet, basename="alert")
router.register("rules", views.AlertRuleViewSet, basename="rule")
router.register("silences", views.SilenceViewSet, basename="silence")
router.register("channels", views.ChannelViewSet, basename="channel")
router.register("routes", RouteViewSet, basename="route")
router.register("escalation-policies", EscalationPolicyViewSet, basename="escalation-policy")

urlpatterns = [
    path("alertmanager/webhook", AlertmanagerWebhookView.as_view(), name="alertmanager-webhook"),
    *router.urls,
]
