"""Fixtures for the log store tests: an API client, batches, and stored records."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from alerting_worker.ingest.logs_handler import write_logs
from shared.wire import Batch
from tests.members import member

_seq = itertools.count(1)


@pytest.fixture
def api(db):
    """A client logged in as an ordinary user."""
    from django.contrib.auth.models import User

    user = member(User.objects.create(username="operator"), "viewer")
    client = APIClient()
    client.force_authenticate(user)
    return client


def make_batch(records: list[dict[str, Any]], host: str = "web-1") -> Batch:
    return Batch(
        kind="logs",
        agent_id=f"agent-{host}",
        host=host,
        agent_version="test",
        epoch=1,
        seq=next(_seq),
        sent_at=time.time(),
        logs=records,
    )


def record(message: str, level: str = "INFO", ago: float = 60.0, **extra: Any) -> dict[str, Any]:
    return {"ts": time.time() - ago, "level": level, "message": message, **extra}


@pytest.fixture
def store(partitions):
    """Store records through the ingest handler: store(records, host=...) -> rows written."""

    def _store(records: list[dict[str, Any]], host: str = "web-1") -> int:
        with connection.cursor() as cursor:
            return write_logs(cursor.cursor, [make_batch(records, host)])

    return _store


def fetch_all(sql: str, args: list[Any] | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, args or [])
        return cursor.fetchall()
