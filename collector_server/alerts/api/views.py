"""Alert, rule, silence and channel endpoints under /api/v1/monitoring/."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_view, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from alerting_worker.alerting import notify_test
from collector_server.alerts import matchers
from collector_server.alerts.api import serializers as s
from collector_server.alerts.api.filters import AlertEventFilter, AlertFilter
from collector_server.alerts.models import (
    SEVERITIES,
    Alert,
    AlertEvent,
    AlertRule,
    Channel,
    Notification,
    Silence,
)
from collector_server.monitoring import statement_timeout
from collector_server.monitoring.api.known_params import KnownQueryParamsMixin, paging_parameters
from collector_server.monitoring.api.pagination import CheckedLimitOffsetPagination
from collector_server.monitoring.api.schema import ErrorSerializer, envelope, message_envelope
from collector_server.monitoring.api.strict import EmptyBodySerializer
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


CONFLICT = {409: ErrorSerializer}
SUMMARY = inline_serializer(
    "AlertSummary",
    {
        "total": serializers.IntegerField(),
        "by_severity": serializers.DictField(child=serializers.IntegerField()),
        "by_state": serializers.DictField(child=serializers.IntegerField()),
    },
)


@extend_schema_view(
    list=extend_schema(responses=envelope("AlertList", s.AlertSerializer(many=True), count=True)),
    create=extend_schema(
        request=s.ManualAlertSerializer,
        responses={201: envelope("AlertCreated", s.AlertSerializer()), **CONFLICT},
    ),
    acknowledge=extend_schema(
        request=s.AcknowledgeSerializer, responses={200: message_envelope("AlertAcknowledged"), **CONFLICT}
    ),
    resolve=extend_schema(
        request=s.ResolveSerializer, responses={200: message_envelope("AlertResolved"), **CONFLICT}
    ),
    summary=extend_schema(responses=envelope("AlertSummaryResponse", SUMMARY)),
)
class AlertViewSet(KnownQueryParamsMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
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
                    annotations=data["annotations"],
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
        if alert.source != Alert.FLEETWATCH:
            return _conflict(_read_only(alert))
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
        body = s.ResolveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if alert.source != Alert.FLEETWATCH:
            return _conflict(_read_only(alert))
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
                note=body.validated_data["comment"],
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
        responses=envelope("AlertHistory", s.AlertEventSerializer(many=True), count=True),
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


def _read_only(alert: Alert) -> str:
    return f"Alert {alert.pk} comes from {alert.source} and is read-only here; act on it there"


def _conflict(message: str) -> Response:
    return Response({"success": False, "error": message}, status=status.HTTP_409_CONFLICT)


PREVIEW = envelope(
    "RulePreview",
    inline_serializer(
        "RulePreviewGroup",
        {
            "labels": serializers.DictField(child=serializers.CharField()),
            "value": serializers.FloatField(allow_null=True),
            "breaches": serializers.BooleanField(allow_null=True),
        },
        many=True,
    ),
)


class AlertRuleViewSet(KnownQueryParamsMixin, viewsets.ModelViewSet):
    lookup_value_regex = r"\d+"
    required_roles = {"preview_unsaved": roles.VIEWER}
    queryset = AlertRule.objects.prefetch_related("channels").all()
    serializer_class = s.AlertRuleSerializer
    filterset_fields = ["enabled", "severity", "query_type"]

    @extend_schema(responses=PREVIEW)
    @action(detail=True, methods=["get"])
    @statement_timeout.limited
    def preview(self, request: Request, pk: str | None = None) -> Response:
        """Evaluate the rule now: the value per group and whether it breaches."""
        rule = self.get_object()
        return Response({"success": True, "data": preview_rule(rule)})

    @extend_schema(responses=PREVIEW)
    @action(detail=False, methods=["post"], url_path="preview")
    @statement_timeout.limited
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


# A queued test send (POST channels/{id}/test) and its outcome (GET channels/{id}/test/{n}):
# a status and a short reason, never the remote body.
_TEST_FIELDS = {
    "notification": serializers.IntegerField(),
    "status": serializers.CharField(),
    "success": serializers.BooleanField(allow_null=True),
    "message": serializers.CharField(),
}
TEST_OUTCOME = inline_serializer("ChannelTestOutcome", _TEST_FIELDS)
TEST_OUTCOME_QUEUED = inline_serializer("ChannelTestQueued", {**_TEST_FIELDS, "url": serializers.URLField()})


class ChannelViewSet(KnownQueryParamsMixin, viewsets.ModelViewSet):
    lookup_value_regex = r"\d+"
    queryset = Channel.objects.all()
    serializer_class = s.ChannelSerializer
    filterset_fields = ["kind", "enabled", "status"]

    @extend_schema(request=EmptyBodySerializer, responses={202: TEST_OUTCOME_QUEUED})
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        """Queue a test notification to the worker; its outcome is read from ``test/{notification}``."""
        EmptyBodySerializer(data=request.data).is_valid(raise_exception=True)
        channel = self.get_object()
        note = notify_test.queue_test(channel)
        body = notify_test.outcome(note)
        body["url"] = request.build_absolute_uri(f"{request.path.rstrip('/')}/{note.pk}")
        return Response(body, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={200: TEST_OUTCOME})
    @action(detail=True, methods=["get"], url_path=r"test/(?P<notification_id>\d+)")
    def test_outcome(self, request: Request, pk: str | None = None, notification_id: str = "") -> Response:
        """Return a queued test notification's status and a short reason."""
        channel = self.get_object()
        note = Notification.objects.filter(
            pk=int(notification_id), channel=channel, group_key=notify_test.TEST_GROUP_KEY
        ).first()
        if note is None:
            raise NotFound(f"no test notification {notification_id} of channel {channel.pk}")
        return Response(notify_test.outcome(note))
