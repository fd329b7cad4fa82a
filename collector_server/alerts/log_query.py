"""The ``log_count`` query type: how many stored log records match, per label group, over a window.

Query: ``{"level" | "min_level", "service", "host", "logger", "pattern", "case_sensitive",
"window", "group_by"}``. ``level``, ``service``, ``host`` and ``logger`` take one value or a
list; ``pattern`` is a regular expression on the message (Postgres ``~*``, through the trigram
index); ``group_by`` picks among ``host``, ``service``, ``logger`` and ``level``. The window is
``[now - window, now)``, the same half-open range as ``/api/v1/logs/search?start=…&end=…``, so
an alert's ``logs_url`` lists exactly the records that were counted.

All log rules of an evaluation cycle are counted by one statement (``evaluate_log_batch``):
one ``UNION ALL`` arm per distinct rule query, each reading its own index (level/service/host
with ``ts``, or the trigram index for the pattern).
A group with no matching record in the window counts 0: groups seen within the rule's
no-data timeout are reported with 0, and a group absent from the result reads 0 too
(``QueryResult.absent_value``), so an alert resolves once its records age out of the window.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.db import DataError, transaction

from collector_server.alerts import query as q
from collector_server.logs import levels
from collector_server.orgs import scope
from collector_server.replica import read_connection as connection  # the replica on API reads

GROUP_COLUMNS = ("host", "service", "logger", "level")
FILTER_COLUMNS = ("host", "service", "logger")
MAX_PATTERN_CHARS = 1000
MAX_VALUES = 100
DEFAULT_WINDOW = 300
STATEMENT_TIMEOUT_MS = 20_000
MAX_LOOKBACK = 86400  # groups seen this long ago at most are reported with 0 (bounds the scan)
SEARCH_PATH = "/api/v1/logs/search"
PAGE_PATH = "/logs/"  # the UI's log page reads the same parameters
FIELDS = {"level", "min_level", *FILTER_COLUMNS, "pattern", "case_sensitive", "window", "group_by"}


class LogCountQuery(q.QueryType):
    """Count the log records matching level, service, host, logger and a regex over a window."""

    name = "log_count"

    def validate(self, query: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(query, dict):
            raise ValueError("query must be an object")
        unknown = set(query) - FIELDS
        if unknown:
            raise ValueError(f"unknown log_count field(s): {', '.join(sorted(unknown))}")
        if query.get("level") not in (None, "", []) and query.get("min_level") not in (None, ""):
            raise ValueError("use either level (exact) or min_level, not both")
        out: dict[str, Any] = {
            "level": [_level("level", v) for v in _strings(query, "level")],
            "min_level": _level("min_level", query["min_level"]) if query.get("min_level") else None,
        }
        for column in FILTER_COLUMNS:
            out[column] = _strings(query, column)
        out["pattern"] = _pattern(query.get("pattern"))
        case_sensitive = query.get("case_sensitive", False)
        if not isinstance(case_sensitive, bool):
            raise ValueError("case_sensitive must be true or false")
        out["case_sensitive"] = case_sensitive
        out["window"] = q._positive_int(query, "window", DEFAULT_WINDOW)
        group_by = q._group_by(query)
        bad = [g for g in group_by if g not in GROUP_COLUMNS]
        if bad:
            raise ValueError(
                f"group_by: cannot group log records by {', '.join(bad)} (use {', '.join(GROUP_COLUMNS)})"
            )
        out["group_by"] = list(dict.fromkeys(group_by))
        return out

    def evaluate(self, query: dict[str, Any], now: datetime, lookback: int = 0) -> q.QueryResult:
        return evaluate_log_batch([query], now, [lookback])[0]


def _strings(query: dict[str, Any], key: str) -> list[str]:
    raw = query.get(key)
    if raw in (None, "", []):
        return []
    values = [raw] if isinstance(raw, str) else raw
    if (
        not isinstance(values, list)
        or len(values) > MAX_VALUES
        or not all(isinstance(v, str) and v for v in values)
    ):
        raise ValueError(f"{key} must be a non-empty string or a list of at most {MAX_VALUES} of them")
    if any("," in v for v in values):  # the log search link lists values comma-separated
        raise ValueError(f"{key}: a value cannot contain a comma (give a list instead)")
    return list(dict.fromkeys(values))


def _level(key: str, raw: Any) -> str:
    level = levels.normalize(raw) if isinstance(raw, str) else None
    if level is None:
        raise ValueError(f"{key}: {raw!r} is not a level (one of {', '.join(levels.LEVELS)})")
    return level


def _pattern(raw: Any) -> str | None:
    if raw in (None, ""):
        return None
    if not isinstance(raw, str) or len(raw) > MAX_PATTERN_CHARS:
        raise ValueError(f"pattern must be a regular expression of 1 to {MAX_PATTERN_CHARS} characters")
    try:
        re.compile(raw)
    except re.error as exc:
        raise ValueError(f"pattern {raw!r} is not a valid regular expression: {exc}") from None
    problem = _postgres_regex_error(raw)
    if problem:
        raise ValueError(f"pattern {raw!r} is not a valid Postgres regular expression: {problem}")
    return raw


@functools.lru_cache(maxsize=1024)
def _postgres_regex_error(pattern: str) -> str | None:
    """Return why Postgres refuses the regex (its syntax differs from Python's), None if it accepts it."""
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute("SELECT '' ~* %s", [pattern])
    except DataError as exc:
        return str(exc).strip().splitlines()[0]
    return None


def _conditions(query: dict[str, Any]) -> tuple[str, list[Any]]:
    """Return one rule's filters (without its time bound) as SQL and parameters."""
    org_clause, org_args = scope.sql_filter("organization_id")
    clauses: list[str] = [org_clause]
    args: list[Any] = [*org_args]
    if query["level"]:
        clauses.append("level_no = ANY(%s)")
        args.append([levels.LEVELS[name] for name in query["level"]])
    if query["min_level"]:
        clauses.append("level_no >= %s")
        args.append(levels.LEVELS[query["min_level"]])
    for column in FILTER_COLUMNS:
        if query[column]:
            clauses.append(f"{column} = ANY(%s)")
            args.append(query[column])
    if query["pattern"]:
        clauses.append(f"message {'~' if query['case_sensitive'] else '~*'} %s")
        args.append(query["pattern"])
    return " AND ".join(["ts >= %s", *clauses]), args


def evaluate_log_batch(
    queries: list[dict[str, Any]], now: datetime, lookbacks: list[int] | None = None
) -> list[q.QueryResult]:
    """Count the records of every (validated) query in one statement; return one result per query.

    A query's value per group counts its records in ``[now - window, now)``. A group seen
    within the query's lookback (its rule's no-data timeout, at most a day) but not in the
    window is reported with 0, so ``< N`` rules notice a host or service that went quiet.
    Each query is one ``UNION ALL`` arm with its own filters, so each uses its own index
    (a single scan with one ``FILTER`` per rule measured twice as slow: see bench/log_rules.py).
    """
    if not queries:
        return []
    lookbacks = lookbacks or [0] * len(queries)
    arms: list[str] = []
    args: list[Any] = []
    for index, (query, lookback) in enumerate(zip(queries, lookbacks, strict=True)):
        conditions, condition_args = _conditions(query)
        window_start = now - timedelta(seconds=query["window"])
        seen_start = min(window_start, now - timedelta(seconds=min(lookback, MAX_LOOKBACK)))
        group_by = query["group_by"]
        columns = [f"{c}::text" if c in group_by else "NULL::text" for c in GROUP_COLUMNS]
        arms.append(
            f"(SELECT {index}, {', '.join(columns)}, count(*) FILTER (WHERE ts >= %s) FROM logs_entry "
            f"WHERE {conditions} AND ts < %s" + (f" GROUP BY {', '.join(group_by)})" if group_by else ")")
        )
        args += [window_start, seen_start, *condition_args, now]
    rows = _fetch(" UNION ALL ".join(arms), args)
    results = [q.QueryResult(absent_value=0.0) for _ in queries]
    for index, *values, count in rows:
        labels = dict(zip(GROUP_COLUMNS, values, strict=True))
        results[index].add({c: labels[c] or "" for c in queries[index]["group_by"]}, float(count))
    return results


def _fetch(sql: str, args: list[Any]) -> list[tuple]:
    """Run the scan with a time limit, so one slow regex cannot stall the evaluation cycle."""
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}")
        cursor.execute(sql, args)
        return cursor.fetchall()


def search_params(query: dict[str, Any], labels: dict[str, Any], end: datetime) -> dict[str, str]:
    """Return the /api/v1/logs/search parameters listing the records ``query`` counted at ``end``."""
    start = end - timedelta(seconds=query["window"])
    params = {"start": _iso(start), "end": _iso(end)}
    filters: dict[str, list[str]] = {
        "level": list(query["level"]),
        **{c: list(query[c]) for c in FILTER_COLUMNS},
    }
    for column in query["group_by"]:
        if column in labels:
            # An empty label (records without a service, e.g. tailed files) becomes ``service=``,
            # which the search reads as "records without a service".
            filters[column] = [str(labels[column] or "")]
    for name, values in filters.items():
        if values:
            params[name] = ",".join(values)
    if query["min_level"]:
        params["min_level"] = query["min_level"]
    if query["pattern"]:
        params["pattern"] = query["pattern"]
        if query["case_sensitive"]:
            params["case_sensitive"] = "true"
    params["order"] = "oldest"
    return params


def search_url(query: dict[str, Any], labels: dict[str, Any], end: datetime, path: str = SEARCH_PATH) -> str:
    return f"{path}?{urlencode(search_params(query, labels, end))}"


def alert_logs_url(alert: Any, path: str = PAGE_PATH) -> str | None:
    """Return the log page (or, with path=SEARCH_PATH, the API search) of the records behind a
    log_count alert's last breach; None for other alerts."""
    rule = alert.rule if alert.rule_id else None
    if rule is None or rule.query_type != LogCountQuery.name:
        return None
    end = alert.last_breach_at or alert.fired_at or alert.started_at
    try:
        query = LogCountQuery().validate(rule.query)
    except ValueError:
        return None
    return search_url(query, alert.labels or {}, end, path)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


q.register(LogCountQuery())
