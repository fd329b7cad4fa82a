"""Which failures are outages (entries stay pending) and which are a batch's doing (dead-lettered)."""

from __future__ import annotations

import psycopg
import pytest
import redis
from django.db import utils as django_db
from rq.timeouts import JobTimeoutException

from alerting_worker.ingest.failures import Failure, classify


def wrapped(exc: Exception) -> Exception:
    """What Django raises: its own class, the driver's error as the cause."""
    outer = django_db.DatabaseError(str(exc))
    outer.__cause__ = exc
    return outer


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (redis.ConnectionError("reset by peer"), Failure.REDIS),
        (redis.TimeoutError("timed out"), Failure.REDIS),
        (JobTimeoutException("job timeout"), Failure.INTERRUPTED),
        (psycopg.errors.ReadOnlySqlTransaction("read-only"), Failure.DEPLOYMENT),
        (wrapped(psycopg.errors.UndefinedTable("no table")), Failure.DEPLOYMENT),
        (wrapped(psycopg.errors.InsufficientPrivilege("denied")), Failure.DEPLOYMENT),
        (psycopg.OperationalError("connection refused"), Failure.DATABASE),
        (django_db.OperationalError("server closed the connection"), Failure.DATABASE),
        (wrapped(psycopg.errors.QueryCanceled("statement timeout")), Failure.DATABASE),
        (wrapped(psycopg.errors.NumericValueOutOfRange("bigint out of range")), Failure.DATA),
        (psycopg.errors.UniqueViolation("duplicate"), Failure.DATA),
        (TypeError("unhashable type: 'dict'"), Failure.DATA),
        (RecursionError("maximum recursion depth exceeded"), Failure.DATA),
        (KeyError("name"), Failure.DATA),
    ],
)
def test_failures_are_classified(exc, kind):
    assert classify(exc) is kind
