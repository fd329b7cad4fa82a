"""Reads of the API and the UI on a streaming replica (DATABASE_REPLICA_URL).

``ReplicaRouter`` sends a read to the ``replica`` database only while ``reads_on_replica`` is
set, which ``ReplicaReadsMiddleware`` does for a safe request (GET, HEAD, OPTIONS) when

* the client wrote nothing in the last DATABASE_REPLICA_STICKY_SECONDS (a POST, PUT, PATCH or
  DELETE marks its client by a cookie and, for API tokens, by a key in Redis): it reads its
  own writes from the primary;
* the replica answers and its replay lag is at most HEALTH_MAX_REPLICA_LAG_SECONDS (probed at
  most every PROBE_SECONDS per process): otherwise reads fall back to the primary and the
  health endpoint reports the replica degraded.

Everything else (writes, the workers, the alert evaluator, management commands, the admin)
uses the primary: the flag is off outside those requests.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse

log = logging.getLogger(__name__)

REPLICA = "replica"
PRIMARY = "default"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
STICKY_COOKIE = "fleetwatch_read_primary"
PROBE_SECONDS = 2.0
PROBE_DOWN_SECONDS = 5.0
PRIMARY_ONLY_PATHS = ("/admin/",)
LAG_SQL = """
SELECT pg_is_in_recovery(),
       CASE WHEN pg_last_wal_receive_lsn() IS NULL
              OR pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0.0
            ELSE COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()), 0.0)
       END::float8,
       COALESCE(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)::bigint,
       pg_is_wal_replay_paused()
"""

reads_on_replica: contextvars.ContextVar[bool] = contextvars.ContextVar("reads_on_replica", default=False)


def configured() -> bool:
    return REPLICA in settings.DATABASES


def read_alias() -> str:
    return REPLICA if reads_on_replica.get() else PRIMARY


class ReadConnection:
    """``django.db.connection`` for raw-SQL reads: the replica while ``reads_on_replica`` is set.

    The modules behind the API's and the UI's read endpoints (queries, charts, log search,
    PromQL) use it instead of ``django.db.connection``; anywhere else (workers, the alert
    evaluator) the flag is off and it is the primary's connection. Transactions around such
    reads use ``transaction.atomic(using=read_connection.alias)``.
    """

    def __getattr__(self, item: str) -> Any:
        return getattr(connections[read_alias()], item)


read_connection: Any = ReadConnection()


class ReplicaRouter:
    """Reads on the replica while ``reads_on_replica`` is set; writes and migrations on the primary."""

    def db_for_read(self, model: Any, **hints: Any) -> str:
        return REPLICA if reads_on_replica.get() else PRIMARY

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return PRIMARY

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True  # the same data on both

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == PRIMARY


class ReplicaState:
    """The replica's last probe: reachable, replay lag (seconds, bytes); refreshed when stale."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.checked = 0.0
        self.state: dict[str, Any] = {}

    def current(self, force: bool = False) -> dict[str, Any]:
        now = time.monotonic()
        with self.lock:
            fresh = PROBE_SECONDS if self.state.get("reachable") else PROBE_DOWN_SECONDS
            if force or not self.state or now - self.checked >= fresh:
                self.state = probe()
                self.checked = now
            return dict(self.state)

    def usable(self) -> bool:
        state = self.current()
        return bool(state.get("reachable")) and state.get("lag_seconds", 0.0) <= max_lag()


STATE = ReplicaState()


def max_lag() -> float:
    return float(getattr(settings, "HEALTH_MAX_REPLICA_LAG_SECONDS", 30.0))


def probe() -> dict[str, Any]:
    """Ask the replica how far its replay is behind what it received."""
    started = time.monotonic()
    connection = connections[REPLICA]
    try:
        with connection.cursor() as cursor:
            cursor.execute(LAG_SQL)
            recovering, lag_seconds, lag_bytes, paused = cursor.fetchone()
    except Exception as exc:  # down, refused, timed out: reads go to the primary
        connection.close()
        return {"reachable": False, "error": f"{type(exc).__name__}: {exc}".strip()}
    state: dict[str, Any] = {
        "reachable": True,
        "latency_ms": round((time.monotonic() - started) * 1000, 2),
        "lag_seconds": round(max(0.0, float(lag_seconds)), 3),
        "lag_bytes": int(lag_bytes),
        "replay_paused": bool(paused),
    }
    if not recovering:
        state["warning"] = "DATABASE_REPLICA_URL is not in recovery: it is a primary, not a replica"
    return state


def _client_key(request: HttpRequest) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return None
    digest = hashlib.sha256(header.encode("utf-8", "replace")).hexdigest()[:32]
    from shared import streams

    return f"{streams.prefix()}:replica:sticky:{digest}"


def sticky_seconds() -> int:
    return int(getattr(settings, "DATABASE_REPLICA_STICKY_SECONDS", 15))


def read_own_writes(request: HttpRequest) -> bool:
    """True when this client wrote recently: it must read from the primary."""
    if request.COOKIES.get(STICKY_COOKIE):
        return True
    key = _client_key(request)
    if key is None:
        return False
    try:
        from collector_server.redis_conn import get_redis

        return bool(get_redis().exists(key))
    except Exception:  # Redis unreachable: the primary is always right
        return True


def mark_writer(request: HttpRequest, response: HttpResponse) -> None:
    seconds = sticky_seconds()
    response.set_cookie(STICKY_COOKIE, "1", max_age=seconds, httponly=True, samesite="Lax")
    key = _client_key(request)
    if key is not None:
        try:
            from collector_server.redis_conn import get_redis

            get_redis().set(key, b"1", ex=seconds)
        except Exception as exc:  # the cookie still covers clients that keep cookies
            log.warning("cannot record a recent write for read-your-writes: %s", exc)


class ReplicaReadsMiddleware:
    """Set ``reads_on_replica`` for safe requests when the replica is usable (first in MIDDLEWARE)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        safe = request.method in SAFE_METHODS
        use = (
            configured()
            and safe
            and not request.path.startswith(PRIMARY_ONLY_PATHS)
            and not read_own_writes(request)
            and STATE.usable()
        )
        token = reads_on_replica.set(bool(use))
        try:
            response = self.get_response(request)
        finally:
            reads_on_replica.reset(token)
        if not safe and response.status_code < 500 and configured():
            mark_writer(request, response)
        return response


def check() -> Any:
    """Health check "replica": lag and reachability; degraded (reads on the primary) when either fails."""
    from collector_server.monitoring.health import Check

    state = STATE.current(force=True)
    details = state | {"max_lag_seconds": max_lag()}
    result = Check("replica", True, details)
    if not state.get("reachable"):
        details["warning"] = "the replica does not answer; reads use the primary"
        result.degraded = True
    elif state["lag_seconds"] > max_lag():
        details["warning"] = (
            f"replica replay lag {state['lag_seconds']:.1f}s exceeds HEALTH_MAX_REPLICA_LAG_SECONDS "
            f"({max_lag():g}); reads use the primary"
        )
        result.degraded = True
    details["reads_on"] = PRIMARY if result.degraded else REPLICA
    return result
