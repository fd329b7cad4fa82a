"""GET hosts, hosts/{id}: the machines running agents."""

from __future__ import annotations

from django.db.models import Count, QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from collector_server.monitoring.api.filters import HostFilter
from collector_server.monitoring.api.known_params import KnownQueryParamsMixin
from collector_server.monitoring.api.pagination import EnvelopePagination
from collector_server.monitoring.api.serializers import HostSerializer
from collector_server.monitoring.models import Host
from collector_server.orgs.views import OrganizationScopedMixin


@extend_schema_view(
    list=extend_schema(summary="List hosts with up/down state"),
    retrieve=extend_schema(summary="One host"),
)
class HostViewSet(OrganizationScopedMixin, KnownQueryParamsMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = HostSerializer
    filterset_class = HostFilter
    pagination_class = EnvelopePagination

    def get_queryset(self) -> QuerySet[Host]:
        return Host.objects.annotate(series_count=Count("series")).order_by("hostname", "id")

    def retrieve(self, request: Request, *args: object, **kwargs: object) -> Response:
        response = super().retrieve(request, *args, **kwargs)
        response.data = {"success": True, "data": response.data}
        return response
