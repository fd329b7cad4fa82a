"""Routes under /api/v1/: audit, tokens, members (a trailing slash is optional)."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from collector_server.orgs.api import views

app_name = "orgs-api"

router = SimpleRouter(trailing_slash="/?")
router.register("audit", views.AuditEventViewSet, basename="audit")
router.register("tokens", views.ApiTokenViewSet, basename="token")
router.register("members", views.MembershipViewSet, basename="member")

urlpatterns = router.urls
