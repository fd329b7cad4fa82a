"""Alert, rule, silence and channel endpoints under /api/v1/monitoring/."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from alerting_worker.alerting import notify_test
from collector_server.alerts import matchers
from collector_server.alerts.api import serializers as s
from collector_server.alerts.api.filters import AlertEventFilter, AlertFilter
from collector_server.alerts.models import SEVERITIES, Alert, AlertEvent, AlertRule, Channel, Silence
from collector_server.monitoring.api.known_params import KnownQueryParamsMixin, paging_parameters
from collector_server.monitoring.api.pagination import CheckedLimitOffsetPagination
from collector_server.orgs import audit, roles, scope
from collector_server.orgs.views import OrganizationScopedMixin, creation_organization

OPERATOR_WRITES = {
    "create": roles.OPERATOR,
    "update": roles.OPERATOR,
    "partial_update": roles.OPERATOR,
    "destroy": roles.OPERATOR,
}


def _actor(request: Request) -> str:
    return request.user.get_username() if request.user and request.user.is_authenticated else ""


class AlertViewSet(
    OrganizationScopedMixin, KnownQueryParamsMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Active alerts (``?state=`` widens the list), the history, a summary and operator actions."""

    required_roles = {"create": roles.OPERATOR, "acknowledge": roles.OPERATOR, "resolve": roles.OPERATOR}

    lookup_value_regex = r"\d+"
    queryset = Alert.objects.select_related("rule").all()
    serializer_class = s.AlertSerializer
    filterset_class = AlertFilter
    pagination_class = CheckedLimitOffsetPagination
    list_actions = ("list", "history")  # the actions that filter and page (KnownQueryParamsMixin)

    def list(self, request: Request) -> Response:
        qs = self.filter_queryset(self.get_queryset())
        if "state" not in request.query_params:
            qs = qs.filter(state__in=Alert.ACTIVE_STATES)
        page = self.paginate_queryset(qs)
        rows = page if page is not None else qs
        count = self.paginator.count if page is not None else len(rows)
        return Response({"success": True, "data": self.get_serializer(rows, many=True).data, "count": count})

    def create(self, request: Request) -> Response:
        """Raise a manual alert; it stays firing until resolved through the API."""
        org_id = creation_organization(request, self)
        body = s.ManualAlertSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data, now = body.validated_data, timezone.now()
        identity = {k: v for k, v in data["labels"].items() if k not in ("alertname", "severity")}
        labels = {**identity, "alertname": data["name"], "severity": data["severity"]}
        try:
            with transaction.atomic():
                alert = Alert.objects.create(
                    organization_id=org_id,
                    name=data["name"],
                    labels=labels,
                    labels_key=matchers.labels_key(identity),
                    severity=data["severity"],
                    state=Alert.FIRING,
                    value=data["value"],
                    summary=data["summary"] or data["name"],
                    description=data["description"],
                    manual=True,
                    created_by=_actor(request),
                    started_at=now,
                    fired_at=now,
                    updated_at=now,
                )
                AlertEvent.objects.create(
                    alert=alert,
                    to_state=Alert.FIRING,
                    from_state=Alert.INACTIVE,
                    at=now,
                    actor=_actor(request),
                )
                audit.record("create", alert, {"name": [None, alert.name], "labels": [None, alert.labels]})
        except IntegrityError:
            return Response(
                {"success": False, "error": f"alert {data['name']!r} with these labels is already open"},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(
            {"success": True, "data": s.AlertSerializer(alert).data}, status=status.HTTP_201_CREATED
        )

    @action(detail=True, methods=["post", "put"])  # PUT: the seed documents' verb
    def acknowledge(self, request: Request, pk: str | None = None) -> Response:
        alert = self.get_object()
        body = s.AcknowledgeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        now, actor = timezone.now(), _actor(request)
        with transaction.atomic():
            changed = Alert.objects.filter(pk=alert.pk, state=Alert.FIRING).update(
                acknowledged_by=actor, acknowledged_at=now, ack_comment=body.validated_data["comment"]
            )
            if not changed:
                return _conflict(
                    f"Alert {alert.pk} is {alert.state}; only a firing alert can be acknowledged"
                )
            AlertEvent.objects.create(
                alert=alert,
                rule_id=alert.rule_id,
                labels_key=alert.labels_key,
                from_state=Alert.FIRING,
                to_state="acknowledged",
                value=alert.value,
                at=now,
                actor=actor,
                note=body.validated_data["comment"],
            )
            audit.record("acknowledge", alert, {"acknowledged_by": [alert.acknowledged_by, actor]})
        return Response({"success": True, "message": f"Alert {alert.pk} acknowledged"})

    @action(detail=True, methods=["post", "put"])  # PUT: the seed documents' verb
    def resolve(self, request: Request, pk: str | None = None) -> Response:
        alert = self.get_object()
        now, actor = timezone.now(), _actor(request)
        with transaction.atomic():
            changed = Alert.objects.filter(pk=alert.pk, state__in=Alert.ACTIVE_STATES).update(
                state=Alert.RESOLVED, resolved_at=now, resolved_by=actor, updated_at=now
            )
            if not changed:
                return _conflict(f"Alert {alert.pk} is already {alert.state}")
            AlertEvent.objects.create(
                alert=alert,
                rule_id=alert.rule_id,
                labels_key=alert.labels_key,
                from_state=alert.state,
                to_state=Alert.RESOLVED,
                value=alert.value,
                at=now,
                actor=actor,
                note=str(request.data.get("comment", ""))[:2000],
            )
            audit.record("resolve", alert, {"state": [alert.state, Alert.RESOLVED]})
        return Response({"success": True, "message": f"Alert {alert.pk} resolved"})

    @action(detail=False, methods=["get"])
    def summary(self, request: Request) -> Response:
        active = Alert.objects.filter(state__in=Alert.ACTIVE_STATES)
        by_severity = dict.fromkeys(SEVERITIES, 0)
        by_severity.update({r["severity"]: r["n"] for r in active.values("severity").annotate(n=Count("id"))})
        by_state = {r["state"]: r["n"] for r in active.values("state").annotate(n=Count("id"))}
        firing = active.filter(state=Alert.FIRING)
        by_state["acknowledged"] = firing.filter(acknowledged_at__isnull=False).count()
        by_state["silenced"] = firing.filter(silenced=True).count()
        data = {"total": active.count(), "by_severity": by_severity, "by_state": by_state}
        return Response({"success": True, "data": data})

    @extend_schema(
        summary="Alert state changes, newest first",
        filters=True,
        parameters=paging_parameters(pagination_class),
    )
    @action(
        detail=False,
        methods=["get"],
        queryset=AlertEvent.objects.select_related("alert"),
        serializer_class=s.AlertEventSerializer,
        filterset_class=AlertEventFilter,
    )
    def history(self, request: Request) -> Response:
        qs = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(qs)
        rows = page if page is not None else qs
        count = self.paginator.count if page is not None else len(rows)
        data = s.AlertEventSerializer(rows, many=True).data
        return Response({"success": True, "data": data, "count": count})


class SeedAlertViewSet(AlertViewSet):
    """The same alert endpoints under the seed documents' /api/monitoring/ (no version).

    Kept out of the OpenAPI schema (``schema = None``), which lists each operation once,
    under /api/v1/monitoring/.
    """

    schema = None


def _conflict(message: str) -> Response:
    return Response({"success": False, "error": message}, status=status.HTTP_409_CONFLICT)


class AlertRuleViewSet(OrganizationScopedMixin, KnownQueryParamsMixin, viewsets.ModelViewSet):
    lookup_value_regex = r"\d+"
    required_roles = {"preview_unsaved": roles.VIEWER}
    queryset = AlertRule.objects.prefetch_related("channels").all()
    serializer_class = s.AlertRuleSerializer
    filterset_fields = ["enabled", "severity", "query_type"]

    @action(detail=True, methods=["get"])
    def preview(self, request: Request, pk: str | None = None) -> Response:
        """Evaluate the rule now: the value per group and whether it breaches."""
        rule = self.get_object()
        return Response({"success": True, "data": preview_rule(rule)})

    @action(detail=False, methods=["post"], url_path="preview")
    def preview_unsaved(self, request: Request) -> Response:
        """Validate and evaluate a rule body without saving it (what it would do)."""
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        fields = {k: v for k, v in body.validated_data.items() if k != "channels"}
        org_id = scope.write_organization_id()
        return Response({"success": True, "data": preview_rule(AlertRule(organization_id=org_id, **fields))})


def preview_rule(rule: AlertRule) -> list[dict[str, Any]]:
    org_id = rule.organization_id or scope.write_organization_id()
    with scope.use_organization(org_id):  # the rule's organisation's data only
        result = rule.evaluate_now()
    return [
        {
            "labels": group.labels,
            "value": group.value,
            "breaches": None if group.value is None else rule.breaches(group.value, firing=False),
        }
        for group in result.groups.values()
    ]


class SilenceViewSet(OrganizationScopedMixin, KnownQueryParamsMixin, viewsets.ModelViewSet):
    lookup_value_regex = r"\d+"
    queryset = Silence.objects.all()
    serializer_class = s.SilenceSerializer
    required_roles = OPERATOR_WRITES

    def creation_extras(self) -> dict[str, Any]:
        return {"created_by": _actor(self.request)}


class ChannelViewSet(OrganizationScopedMixin, KnownQueryParamsMixin, viewsets.ModelViewSet):
    lookup_value_regex = r"\d+"
    queryset = Channel.objects.all()
    serializer_class = s.ChannelSerializer
    filterset_fields = ["kind", "enabled", "status"]

    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        """Send a test notification now and report the outcome."""
        ok, detail = notify_test.send_test(self.get_object())
        code = status.HTTP_200_OK if ok else status.HTTP_502_BAD_GATEWAY
        return Response({"success": ok, "message": detail}, status=code)
