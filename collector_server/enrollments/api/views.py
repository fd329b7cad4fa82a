"""Enrollments API (admin users only): list, enroll (credential shown once), rotate, revoke."""

from __future__ import annotations

from datetime import timedelta

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from collector_server.enrollments.api.serializers import (
    EnrollmentCreatedSerializer,
    EnrollmentSerializer,
    RotateSerializer,
)
from collector_server.enrollments.models import Enrollment
from collector_server.monitoring.api.known_params import KnownQueryParamsMixin
from collector_server.monitoring.api.strict import EmptyBodySerializer


class EnrollmentViewSet(
    KnownQueryParamsMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Enrollment.objects.all()
    serializer_class = EnrollmentSerializer
    permission_classes = [permissions.IsAdminUser]

    @extend_schema(responses={201: EnrollmentCreatedSerializer}, summary="Enroll a host")
    def create(self, request: Request, *args: object, **kwargs: object) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        enrollment, credential = Enrollment.enroll(
            serializer.validated_data["host_name"],
            user=request.user,
            note=serializer.validated_data.get("note", ""),
            group=serializer.validated_data.get("group", False),
        )
        body = EnrollmentCreatedSerializer(enrollment, context={"credential": credential}).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=RotateSerializer, responses={200: EnrollmentCreatedSerializer}, summary="Rotate")
    @action(detail=True, methods=["post"])
    def rotate(self, request: Request, pk: str | None = None) -> Response:
        enrollment = self.get_object()
        params = RotateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        if enrollment.revoked:
            return Response(
                {"detail": "a revoked enrollment cannot be rotated; enroll the host again"},
                status=status.HTTP_409_CONFLICT,
            )
        grace = params.validated_data.get("grace_seconds")
        credential = enrollment.rotate(None if grace is None else timedelta(seconds=grace))
        return Response(EnrollmentCreatedSerializer(enrollment, context={"credential": credential}).data)

    @extend_schema(
        request=EmptyBodySerializer, responses={200: EnrollmentSerializer}, summary="Revoke at once"
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        EmptyBodySerializer(data=request.data).is_valid(raise_exception=True)
        enrollment = self.get_object()
        enrollment.revoke()
        return Response(EnrollmentSerializer(enrollment).data)
