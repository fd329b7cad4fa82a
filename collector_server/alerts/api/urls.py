"""Alerting routes, included under /api/v1/monitoring/."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from collector_server.alerts.api import views

app_name = "alerts-api"

router = SimpleRouter(trailing_slash=False)  # the seed paths have no trailing slash
router.register("alerts", views.AlertViewSet, basename="alert")
router.register("rules", views.AlertRuleViewSet, basename="rule")
router.register("silences", views.SilenceViewSet, basename="silence")
router.register("channels", views.ChannelViewSet, basename="channel")

urlpatterns = router.urls
