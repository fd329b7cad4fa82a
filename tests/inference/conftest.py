"""Fixtures of the inference tests: token clients per role and organisation, draining the streams."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from alerting_worker.ingest.consumer import StreamConsumer
from alerting_worker.ingest.jobs import handler_for
from alerting_worker.ingest.metrics_handler import CACHE
from shared import streams
from tests.alerting.conftest import Metrics
from tests.members import issue_token, member
from tests.server.conftest import django_db_setup  # noqa: F401  (partitions of the last two weeks)


def client_for(username: str, role: str, org: str | None = None) -> APIClient:
    from django.contrib.auth.models import User

    user = User.objects.create_user(username, password=f"{username}-password-1")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issue_token(member(user, role, org), role, org)}")
    return client


@pytest.fixture
def operator(db) -> APIClient:
    return client_for("inf-operator", "operator")


@pytest.fixture
def viewer(db) -> APIClient:
    return client_for("inf-viewer", "viewer")


def drain(redis_client) -> None:
    """Store everything queued (metrics and logs) as the ingest workers would."""
    CACHE.clear()
    for kind in (streams.METRICS, streams.LOGS):
        StreamConsumer(redis_client, kind, handler_for(kind), consumer="t", block_ms=0).drain(max_seconds=20)


@pytest.fixture
def now() -> datetime:
    """A fixed 'now': the last noon that has passed (tests pass it explicitly; nothing sleeps).

    Never in the future: what the API reads up to the real clock (the daily cost) holds it.
    """
    return (datetime.now(UTC) - timedelta(hours=12)).replace(hour=12, minute=0, second=0, microsecond=0)


@pytest.fixture
def metrics(partitions) -> Metrics:
    """Series and samples written straight to Postgres (tests.alerting's helper)."""
    return Metrics()
