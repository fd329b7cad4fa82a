"""A Postgres statement timeout on the queries a user's request drives (setting QUERY_TIMEOUT_MS).

The API query endpoint, rule preview and log search run inside a transaction whose
``SET LOCAL statement_timeout`` cancels a query that runs too long; the client gets a 400
saying so (narrow the range or the filters), never a 5xx, and the database is freed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.db import OperationalError, transaction
from rest_framework import status
from rest_framework.exceptions import APIException

from collector_server.replica import read_connection as connection

View = TypeVar("View", bound=Callable[..., Any])
QUERY_CANCELED = "57014"  # SQLSTATE of a statement cancelled by statement_timeout


class QueryTimeout(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "query_timeout"


def timeout_ms(default: int = 0) -> int:
    """Return the statement timeout of user-driven queries in ms (QUERY_TIMEOUT_MS), or ``default``."""
    return int(getattr(settings, "QUERY_TIMEOUT_MS", default) or default)


def limited(view: View) -> View:
    """Run a view method under the statement timeout; a cancelled query becomes a 400."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        limit = timeout_ms()
        if not limit:
            return view(*args, **kwargs)
        try:
            with transaction.atomic(using=connection.alias):  # the replica's, on a replica read
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL statement_timeout = %s", [limit])
                return view(*args, **kwargs)
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != QUERY_CANCELED:
                raise
            raise QueryTimeout(
                {
                    "query": f"the query ran longer than the statement timeout of {limit} ms "
                    "(QUERY_TIMEOUT_MS); narrow the time range or the filters"
                }
            ) from None

    return wrapper  # type: ignore[return-value]
