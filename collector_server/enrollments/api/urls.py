"""Routes of the enrollments API, mounted at /api/v1/monitoring/."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from collector_server.enrollments.api.views import EnrollmentViewSet

router = SimpleRouter(trailing_slash=False)
router.register("enrollments", EnrollmentViewSet, basename="enrollment")
urlpatterns = router.urls
