"""Two organisations, A with one of everything and members of every role, B with its admin.

Every name of A's objects carries MARKER, so a test can check that no response to B holds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from alerting_worker.ingest.logs_handler import write_logs
from collector_server.alerts.models import (
    Alert,
    AlertEvent,
    AlertRule,
    Channel,
    EscalationPolicy,
    EscalationStep,
    Notification,
    Route,
    Silence,
)
from collector_server.monitoring.models import Host, RollupState, Series
from collector_server.orgs import audit
from collector_server.orgs.models import ApiToken, AuditEvent, Membership
from tests.logs.conftest import make_batch, record
from tests.members import issue_token, member, organization

MARKER = "zzAzz"
ORG_A, ORG_B = "org-zzazz", "org-b"
ACTORS = ("anon", "b_admin", "viewer", "operator", "admin")  # A's admin acts last: its writes come after


@dataclass
class World:
    ids: dict[str, Any] = field(default_factory=dict)
    api: dict[str, APIClient] = field(default_factory=dict)
    web: dict[str, Client] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)


def _rule(name: str, org: Any) -> AlertRule:
    return AlertRule.objects.create(
        organization=org,
        name=name,
        query_type="metric",
        query={"metric": "system_cpu_usage_percent", "aggregation": "avg", "window": 300},
        threshold=90,
    )


def _alert(name: str, org: Any, rule: AlertRule | None = None) -> Alert:
    now = timezone.now()
    return Alert.objects.create(
        organization=org,
        rule=rule,
        name=name,
        labels={"host": f"host-{MARKER}", "alertname": name},
        labels_key=f"host=host-{MARKER}",
        severity="high",
        state=Alert.FIRING,
        value=95.0,
        fired_at=now,
    )


def _channel(name: str, org: Any) -> Channel:
    return Channel.objects.create(
        organization=org, name=name, kind="webhook", config={"url": "http://127.0.0.1:9/hook"}
    )


def _silence(comment: str, org: Any) -> Silence:
    return Silence.objects.create(
        organization=org,
        matchers=[{"name": "host", "op": "=", "value": f"host-{MARKER}"}],
        ends_at=timezone.now() + timedelta(hours=1),
        comment=comment,
    )


def _routing_and_enrollments(org_a: Any, channel: Channel) -> dict[str, Any]:
    """A's routing tree, escalation policies, enrollments, a test notification and login records."""
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    from alerting_worker.alerting import notify_test
    from collector_server.enrollments.models import Enrollment

    root = Route.objects.create(organization=org_a, name=f"route-{MARKER}")
    policy = EscalationPolicy.objects.create(organization=org_a, name=f"pol-{MARKER}")
    EscalationStep.objects.create(policy=policy, channel=channel, delay_minutes=5)
    common = {"user_agent": "test", "http_accept": "*/*", "path_info": "/admin/login/"}
    return {
        "route": root.pk,
        "route_del": Route.objects.create(organization=org_a, parent=root, name=f"route-del-{MARKER}").pk,
        "policy": policy.pk,
        "policy_del": EscalationPolicy.objects.create(organization=org_a, name=f"pol-del-{MARKER}").pk,
        "enrollment": Enrollment.enroll(f"enr-{MARKER}", organization_id=org_a.pk)[0].pk,
        "enrollment_rev": Enrollment.enroll(f"enr-rev-{MARKER}", organization_id=org_a.pk)[0].pk,
        "test_note": Notification.objects.create(
            channel=channel, idempotency_key=f"t-{MARKER}", group_key=notify_test.TEST_GROUP_KEY, payload={}
        ).pk,
        "hostname": f"host-{MARKER}",
        "accessattempt": AccessAttempt.objects.create(
            **common, username="someone", get_data="", post_data="", failures_since_start=1
        ).pk,
        "accesslog": AccessLog.objects.create(**common, username="someone").pk,
        "accessfailurelog": AccessFailureLog.objects.create(**common, username="someone").pk,
    }


def _inference(org_a: Any, host: Host) -> dict[str, Any]:
    """A's price, budget and an inference counter (its model name carries the marker)."""
    from collector_server.inference.models import Budget, ModelPrice

    model = f"model-{MARKER}"
    requests = Series.objects.create(
        organization=org_a,
        host=host,
        name="llm_requests_total",
        kind="counter",
        labels={"host": host.hostname, "model": model, "organization": f"cust-{MARKER}", "status": "ok"},
        labels_key=f"host={host.hostname},model={model},organization=cust-{MARKER},status=ok",
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO monitoring_sample (series_id, ts, value) VALUES "
            "(%s, now() - interval '2 minutes', 1), (%s, now() - interval '1 minute', 5)",
            [requests.pk, requests.pk],
        )
    price = ModelPrice.objects.create(organization=org_a, model=model, input_per_1k=1, output_per_1k=2)
    budget = Budget.objects.create(organization=org_a, customer_organization=f"cust-{MARKER}", amount_usd=10)
    return {"price": price.pk, "budget": budget.pk}


@pytest.fixture
def world(db, partitions) -> World:
    w = World()
    org_a, org_b = organization(ORG_A), organization(ORG_B)
    for role in ("viewer", "operator", "admin"):
        w.users[role] = member(User.objects.create_user(f"{role}-{MARKER}", is_staff=True), role, ORG_A)
    w.users["b_admin"] = member(User.objects.create_user("b-admin", is_staff=True), "admin", ORG_B)
    User.objects.create_user(f"spare-{MARKER}")  # joins organisations through POST members
    for name, user in w.users.items():
        client = APIClient()
        client.credentials(
            HTTP_AUTHORIZATION=f"Bearer {issue_token(user, 'admin' if 'admin' in name else name, ORG_A if name != 'b_admin' else ORG_B)}"
        )
        w.api[name] = client
        web = Client()
        web.force_login(user)
        w.web[name] = web
    w.api["anon"], w.web["anon"] = APIClient(), Client()

    with audit.use_actor(w.users["admin"]):
        host = Host.objects.create(organization=org_a, agent_id=f"agent-{MARKER}", hostname=f"host-{MARKER}")
        series = Series.objects.create(
            organization=org_a,
            host=host,
            name="system_cpu_usage_percent",
            labels={"host": host.hostname},
            labels_key=f"host={host.hostname}",
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO monitoring_sample (series_id, ts, value) VALUES (%s, now() - interval '1 minute', 42)",
                [series.pk],
            )
        rule = _rule(f"rule-{MARKER}", org_a)
        channel = _channel(f"chan-{MARKER}", org_a)
        alert = _alert(f"alert-{MARKER}", org_a, rule)
        AlertEvent.objects.create(alert=alert, rule=rule, from_state="pending", to_state="firing")
        note = Notification.objects.create(
            channel=channel, idempotency_key=f"n-{MARKER}", payload={"m": MARKER}
        )
        w.ids.update(
            host=host.pk,
            series=series.pk,
            rule=rule.pk,
            rule_del=_rule(f"rule-del-{MARKER}", org_a).pk,
            channel=channel.pk,
            channel_del=_channel(f"chan-del-{MARKER}", org_a).pk,
            silence=_silence(f"sil-{MARKER}", org_a).pk,
            silence_del=_silence(f"sil-del-{MARKER}", org_a).pk,
            alert=alert.pk,
            alert_res=_alert(f"alert-res-{MARKER}", org_a).pk,
            notification=note.pk,
            member=Membership.all_objects.get(user=w.users["viewer"]).pk,
            token=ApiToken.all_objects.filter(user=w.users["viewer"]).first().pk,
            token_del=ApiToken.issue(w.users["viewer"], org_a, name=f"tok-{MARKER}")[0].pk,
            org=org_a.pk,
            user=w.users["viewer"].pk,
            group=Group.objects.create(name=f"group-{MARKER}").pk,
            rollupstate=RollupState.objects.get_or_create(
                level="1m", defaults={"done_until": timezone.now()}
            )[0].pk,
        )
        w.ids.update(_routing_and_enrollments(org_a, channel))
        w.ids.update(_inference(org_a, host))
        leaver = member(User.objects.create_user(f"leaver-{MARKER}"), "viewer", ORG_A)
        w.ids["member_del"] = Membership.all_objects.get(user=leaver).pk
        w.ids["audit"] = AuditEvent.all_objects.filter(organization=org_a).latest("id").pk
    with connection.cursor() as cursor:
        write_logs(
            cursor.cursor, [make_batch([record(f"log-{MARKER}", request_id=f"req-{MARKER}")], "logs-host")]
        )
    # The log batch's agent has no host row: its records went to the default organisation; move them to A.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE logs_entry SET organization_id = %s WHERE request_id = %s", [org_a.pk, f"req-{MARKER}"]
        )
    # B owns something too, so its lists are not trivially empty.
    _rule("rule-b", org_b)
    return w
