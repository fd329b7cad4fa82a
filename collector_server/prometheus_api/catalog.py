"""What /series, /labels, /label/<name>/values and /metadata answer: the series table, in SQL."""

from __future__ import annotations

from collector_server.prometheus_api.promql import storage
from collector_server.prometheus_api.promql.evaluator import parse
from collector_server.prometheus_api.promql.storage import LabelMatcher, Scope
from collector_server.prometheus_api.promql.values import NAME, PromQLError

MAX_VALUES = 100_000


def selector_matchers(text: str) -> list[LabelMatcher]:
    """Parse one match[] selector into label matchers."""
    node = parse(text)
    if type(node).__name__ != "VectorSelector":
        raise PromQLError(f'invalid parameter "match[]": {text!r} is not a series selector')
    matchers = [
        LabelMatcher(m.name, storage.MATCH_OPS[str(m.op).rsplit(".", 1)[-1]], m.value)
        for m in node.matchers.matchers
    ]
    if node.name and not any(m.name == NAME for m in matchers):
        matchers.insert(0, LabelMatcher(NAME, "=", node.name))
    return matchers


def _where(selectors: list[list[LabelMatcher]], scope: Scope | None) -> tuple[str, list[object]]:
    """A WHERE clause: the scope, and any of the selectors (all of its matchers)."""
    clauses, params = ["true"], []
    if scope is not None:
        clauses.append(scope.sql)
        params.extend(scope.params)
    if selectors:
        alternatives = []
        for matchers in selectors:
            parts = ["true"]
            for matcher in matchers:
                fragment, extra = storage.matcher_sql(matcher)
                parts.append(fragment)
                params.extend(extra)
            alternatives.append("(" + " AND ".join(parts) + ")")
        clauses.append("(" + " OR ".join(alternatives) + ")")
    return " AND ".join(clauses), params


def series(selectors: list[list[LabelMatcher]], scope: Scope | None, limit: int) -> list[dict[str, str]]:
    where, params = _where(selectors, scope)
    rows = storage.fetch(
        f"SELECT s.name, s.labels FROM monitoring_series s WHERE {where} ORDER BY s.name, s.labels_key LIMIT %s",
        [*params, limit],
    )
    return [{NAME: name, **storage.parse_labels(labels)} for name, labels in rows]


def label_names(selectors: list[list[LabelMatcher]], scope: Scope | None) -> list[str]:
    where, params = _where(selectors, scope)
    rows = storage.fetch(
        f"SELECT DISTINCT jsonb_object_keys(s.labels) FROM monitoring_series s WHERE {where}", params
    )
    names = {row[0] for row in rows}
    if rows or _any(where, params):
        names.add(NAME)
    return sorted(names)


def _any(where: str, params: list[object]) -> bool:
    return bool(storage.fetch(f"SELECT 1 FROM monitoring_series s WHERE {where} LIMIT 1", params))


def label_values(name: str, selectors: list[list[LabelMatcher]], scope: Scope | None) -> list[str]:
    where, params = _where(selectors, scope)
    if name == NAME:
        sql = f"SELECT DISTINCT s.name FROM monitoring_series s WHERE {where} ORDER BY 1 LIMIT %s"
        return [row[0] for row in storage.fetch(sql, [*params, MAX_VALUES])]
    sql = (
        f"SELECT DISTINCT s.labels ->> %s AS v FROM monitoring_series s WHERE {where} "
        "AND s.labels ? %s ORDER BY 1 LIMIT %s"
    )
    rows = storage.fetch(sql, [name, *params, name, MAX_VALUES])
    return [row[0] for row in rows if row[0] != ""]


def metadata(metric: str | None, scope: Scope | None, limit: int | None) -> dict[str, list[dict[str, str]]]:
    where, params = _where([[LabelMatcher(NAME, "=", metric)]] if metric else [], scope)
    sql = f"SELECT DISTINCT s.name, s.kind FROM monitoring_series s WHERE {where} ORDER BY 1"
    result: dict[str, list[dict[str, str]]] = {}
    for name, kind in storage.fetch(sql, params):
        if limit is not None and len(result) >= limit and name not in result:
            break
        result.setdefault(name, []).append({"type": kind, "help": "", "unit": ""})
    return result
