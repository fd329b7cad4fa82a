"""Organisations across the features merged beside them: enrollments, pushed data, routing trees."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from alerting_worker.alerting import dispatch
from collector_server.alerts.matchers import labels_key
from collector_server.alerts.models import Alert, Channel, Notification, Route
from collector_server.enrollments.models import Enrollment
from collector_server.monitoring.models import Host
from collector_server.orgs import scope
from tests.members import organization
from tests.orgs.test_isolation import _ingest, _metrics_batch


def test_a_new_hosts_organisation_is_its_enrollments_or_the_pushing_callers(db, partitions):
    acme = organization("acme")
    enrollment, _ = Enrollment.enroll("db-1", organization_id=acme.pk)
    batches = [
        # A signed batch's agent id starts with its enrollment's key id (signatures.Identity.apply).
        _metrics_batch(f"{enrollment.key_id}:agent-1", "db-1", 1.0),
        # Remote write and OTLP name the caller's organisation; a missing one is not trusted.
        _metrics_batch(scope.queued_agent_id("remote-write", "edge-1", acme.pk), "edge-1", 2.0),
        _metrics_batch(scope.queued_agent_id("otlp", "edge-2", 999_999), "edge-2", 3.0),
        _metrics_batch("plain-agent", "web-1", 4.0),
    ]
    _ingest(batches)
    owners = dict(Host.objects.values_list("hostname", "organization_id"))
    default_id = scope.default_organization_id()
    assert owners == {"db-1": acme.pk, "edge-1": acme.pk, "edge-2": default_id, "web-1": default_id}


def test_the_same_host_pushed_by_two_organisations_stays_two_hosts(db, partitions):
    acme, other = organization("acme"), organization("other")
    _ingest(
        [
            _metrics_batch(scope.queued_agent_id("remote-write", "edge", acme.pk), "edge", 1.0),
            _metrics_batch(scope.queued_agent_id("remote-write", "edge", other.pk), "edge", 2.0),
        ]
    )
    assert sorted(Host.objects.filter(hostname="edge").values_list("organization_id", flat=True)) == sorted(
        [acme.pk, other.pk]
    )


def test_enroll_agent_stores_the_enrollment_in_the_named_organisation(db):
    acme = organization("acme")
    call_command("enroll-agent", "db-2", "--organization", "acme", "--quiet", stdout=io.StringIO())
    assert Enrollment.objects.get(host_name="db-2").organization_id == acme.pk
    call_command("enroll-agent", "db-3", "--quiet", stdout=io.StringIO())
    assert Enrollment.objects.get(host_name="db-3").organization_id == scope.default_organization_id()
    with pytest.raises(CommandError, match="no organisation 'nope'"):
        call_command("enroll-agent", "db-4", "--organization", "nope", stdout=io.StringIO())


def _root(org_id: int, channel: Channel) -> Route:
    with scope.use_organization(org_id):
        root = Route(name="root", channel=channel, group_wait_seconds=0)
        root.full_clean()
        root.save()
    return root


def _firing(org_id: int, name: str) -> Alert:
    now = timezone.now()
    return Alert.objects.create(
        organization_id=org_id,
        name=name,
        labels={"alertname": name, "host": "h"},
        labels_key=labels_key({"host": "h"}),
        severity="high",
        state="firing",
        started_at=now,
        fired_at=now,
    )


def test_each_organisation_has_its_own_routing_tree(db, django_capture_on_commit_callbacks):
    acme, other = organization("acme"), organization("other")
    chan_a = Channel.objects.create(
        organization=acme, name="ops", kind="webhook", config={"url": "http://127.0.0.1:9/a"}
    )
    chan_b = Channel.objects.create(
        organization=other, name="ops", kind="webhook", config={"url": "http://127.0.0.1:9/b"}
    )
    with django_capture_on_commit_callbacks(execute=True):
        _root(acme.pk, chan_a)
        _root(other.pk, chan_b)  # one root per organisation: B's is not a second root
    with scope.use_organization(acme.pk), pytest.raises(Exception, match="already a root"):
        Route(name="another").full_clean()
    _firing(acme.pk, "disk-a")
    _firing(other.pk, "disk-b")
    dispatch.dispatch_all(timezone.now())
    told = {
        (note.channel.organization_id, alert["labels"]["alertname"])
        for note in Notification.objects.select_related("channel")
        for alert in note.payload.get("alerts", [])
    }
    assert told == {(acme.pk, "disk-a"), (other.pk, "disk-b")}
