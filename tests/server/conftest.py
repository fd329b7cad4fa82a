"""Fixtures of the server API tests: a user with a token, hosts, series and inserted samples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from collector_server.monitoring.models import Host, Series
from tests.members import issue_token, member


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Create the partitions of the last two weeks once per session (committed), not in every test."""
    from collector_server.monitoring import partitions as parts

    with django_db_blocker.unblock():
        parts.forget_cache()
        today = datetime.now(UTC).date()
        for offset in range(-14, 3):
            for spec in parts.REGISTRY.values():
                parts.ensure_partition(spec, today + timedelta(days=offset))
        parts.forget_cache()


@pytest.fixture
def viewer(db):
    from django.contrib.auth.models import User

    return member(User.objects.create_user("viewer", password="viewer-password-1"), "viewer")


@pytest.fixture
def api(viewer) -> APIClient:
    """A client authenticated with the viewer's token."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issue_token(viewer, 'viewer')}")
    return client


@pytest.fixture
def anonymous() -> APIClient:
    return APIClient()


def make_host(hostname: str, seen_ago: timedelta = timedelta(seconds=5), **fields) -> Host:
    now = timezone.now()
    return Host.objects.create(
        agent_id=f"agent-{hostname}",
        hostname=hostname,
        last_seen=now - seen_ago,
        first_seen=now - timedelta(days=1),
        **fields,
    )


def make_series(host: Host, name: str, kind: str = "gauge", **labels: str) -> Series:
    labels = {"host": host.hostname, **labels}
    key = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return Series.objects.create(name=name, kind=kind, labels=labels, labels_key=key, host=host)


def insert_samples(series: Series, points: list[tuple[datetime, float]]) -> None:
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO monitoring_sample (series_id, ts, value) VALUES (%s, %s, %s)",
            [(series.id, ts, value) for ts, value in points],
        )


def insert_rollup(table: str, series: Series, rows: list[tuple]) -> None:
    """rows: (bucket, min, max, sum, count, last, increase)."""
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} (series_id, bucket, min, max, sum, count, last, increase) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [(series.id, *row) for row in rows],
        )


def minute_floor(value: datetime) -> datetime:
    return value.replace(second=0, microsecond=0)
