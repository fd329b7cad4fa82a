"""Tell an outage (Postgres or Redis unreachable, read-only, not migrated) from a failure a batch caused.

An outage leaves every entry pending, to be retried when the dependency is back: it must
never empty the stream into the dead letters. Any other exception while storing a batch is
the batch's doing (a value Postgres refuses, a handler bug it triggers) and dead-letters it.
"""

from __future__ import annotations

import enum

import psycopg
import redis
from django.db import connection
from django.db import utils as django_db
from rq.timeouts import JobTimeoutException

# SQLSTATEs of a database that is reachable but cannot take writes as deployed: retrying
# later (after a failover, a migration, a GRANT) is right; blaming the batch is not.
DEPLOYMENT_SQLSTATES = frozenset(
    {
        "25006",  # read_only_sql_transaction: a replica, or default_transaction_read_only
        "42501",  # insufficient_privilege
        "42P01",  # undefined_table: not migrated
        "42703",  # undefined_column: not migrated
        "42883",  # undefined_function
    }
)
# A Redis Cluster with a master down answers CLUSTERDOWN / TRYAGAIN / MASTERDOWN: an outage too.
REDIS_OUTAGES = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.ReadOnlyError,
    redis.exceptions.ClusterError,
    redis.exceptions.TryAgainError,
    redis.exceptions.MasterDownError,
    redis.exceptions.RedisClusterException,  # no node could say which master serves a slot
)
DATABASE_OUTAGES = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    django_db.OperationalError,
    django_db.InterfaceError,
)


class Failure(enum.Enum):
    INTERRUPTED = "interrupted"  # the job ran out of time (RQ's timeout raises inside it): raise
    REDIS = "redis"  # Redis unreachable: nothing can be acknowledged; raise
    DEPLOYMENT = "deployment"  # database read-only, unmigrated, no privilege: raise
    DATABASE = (
        "database"  # connection lost, shutdown, out of resources, timeout: an outage unless the DB answers
    )
    DATA = "data"  # anything else: the batch's fault


class DependencyUnavailable(RuntimeError):
    """Postgres (or Redis) cannot take writes now; nothing was read or acknowledged."""


def classify(exc: BaseException) -> Failure:
    if isinstance(exc, JobTimeoutException):
        return Failure.INTERRUPTED
    if isinstance(exc, REDIS_OUTAGES):
        return Failure.REDIS
    cause = exc.__cause__ if isinstance(exc, django_db.Error) and exc.__cause__ is not None else exc
    if getattr(cause, "sqlstate", None) in DEPLOYMENT_SQLSTATES:
        return Failure.DEPLOYMENT
    if isinstance(exc, DATABASE_OUTAGES) or isinstance(cause, DATABASE_OUTAGES):
        return Failure.DATABASE
    return Failure.DATA


def describe(exc: BaseException, limit: int = 500) -> str:
    text = f"{exc.__class__.__name__}: {exc}"
    return text if len(text) <= limit else text[:limit] + "..."


def database_problem() -> str | None:
    """Return why the database cannot take ingest writes now, or None if it can.

    Reconnects a connection an error left unusable, then asks whether writes are allowed.
    """
    try:
        if connection.connection is not None and not connection.is_usable():
            connection.close()
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('transaction_read_only')")
            read_only = cursor.fetchone()[0]
    except Exception as exc:
        try:
            connection.close()
        except Exception:  # closing a broken connection may fail too; the next try opens a new one
            connection.connection = None
        return f"database unreachable: {describe(exc)}"
    if read_only == "on":
        return "database is read-only (transaction_read_only = on)"
    return None
