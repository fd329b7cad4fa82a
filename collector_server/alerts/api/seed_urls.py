"""The alert routes again under /api/monitoring/, the seed documents' unversioned path.

Same views, same authentication as /api/v1/monitoring/alerts; left out of the OpenAPI schema.
"""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from collector_server.alerts.api import views

app_name = "alerts-seed-api"

router = SimpleRouter(trailing_slash=False)
router.register("alerts", views.SeedAlertViewSet, basename="alert")

urlpatterns = router.urls
