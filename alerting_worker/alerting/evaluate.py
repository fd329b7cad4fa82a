"""Evaluate enabled rules and move their alerts through the lifecycle, each transition exactly once.

State lives in Postgres: a pending timer is the alert's ``started_at``, so a restart loses
nothing. Several evaluators may run at once: opening an episode relies on the partial
unique index (one open episode per rule and label set), and every transition is a
conditional ``UPDATE ... WHERE state = <old>`` whose event is written only by the winner.
"""

from __future__ import annotations

import json
import logging
import re
import string
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from collector_server.alerts import format_spec, log_query
from collector_server.alerts import query as q
from collector_server.alerts.models import COMPARISONS, Alert, AlertEvent, AlertRule, severity_rank
from collector_server.orgs import scope

log = logging.getLogger(__name__)

FLAP_WINDOW = timedelta(minutes=15)
FLAP_THRESHOLD = 6  # state changes within the window that make an alert flapping
SEVERITY_RAISED = "severity raised to"
YIELD_EVERY_RULES = 1000  # a long cycle calls ``between`` this often while applying rules  # the note of the event the dispatcher reads as a change


@dataclass
class EvalStats:
    rules: int = 0
    groups: int = 0
    transitions: list[tuple[str, str, str]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    distinct_queries: int = 0
    blocked: list[tuple[str, str]] = field(default_factory=list)  # (rule, labels) held by another alert


NO_DATA = "no data"
_FIELD = re.compile(r"\{(\w+)(![rsa])?(?::([^{}]*))?\}")


def _field(fields: dict[str, Any], name: str, conversion: str | None, spec: str, original: str) -> str:
    """Format one placeholder; an unknown name stays as written, a missing value reads "no data"."""
    if name not in fields:
        return original
    value = fields[name]
    if value is None:
        return NO_DATA
    if conversion:
        value = {"r": repr, "s": str, "a": ascii}[conversion](value)
    try:
        return format(value, format_spec.clamp(spec))
    except (ValueError, TypeError):  # e.g. {host:.1f}: the value as it is rather than nothing
        return str(value)


def render(template: str, labels: dict[str, Any], value: float | None) -> str:
    """Fill ``{label}`` and ``{value:.1f}`` placeholders, each on its own.

    A None value (no data) reads "no data" whatever its format spec; an unknown placeholder
    stays visible as written (``{unknown}``); one bad placeholder never spoils the others.
    """
    fields = {**labels, "value": value}
    try:
        out = []
        for literal, name, spec, conversion in string.Formatter().parse(template):
            out.append(literal)
            if name is None:
                continue
            spec = render(spec, labels, value) if spec and "{" in spec else (spec or "")
            original = (
                "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            )
            out.append(_field(fields, name, conversion, spec, original))
        return "".join(out)
    except (ValueError, TypeError):  # unbalanced braces: fill what is recognisable, keep the rest
        return _FIELD.sub(
            lambda m: _field(fields, m[1], (m[2] or "")[1:] or None, m[3] or "", m[0]), template
        )


def rule_metrics(rule: AlertRule) -> set[str]:
    """Return the metric names a rule's query reads (empty for queries not on metrics)."""
    query = rule.query if isinstance(rule.query, dict) else {}
    parts = [query, query.get("numerator"), query.get("denominator")]
    return {p["metric"] for p in parts if isinstance(p, dict) and isinstance(p.get("metric"), str)}


def evaluate_all(
    now: datetime | None = None,
    metrics: set[str] | None = None,
    between: Callable[[], object] | None = None,
) -> EvalStats:
    """Evaluate every enabled rule at ``now``; one failing rule does not stop the others.

    Rules with the same query share one evaluation per cycle, and the open alerts are read
    in one query; both are only a snapshot, every transition is still conditional.
    With ``metrics``, only the rules reading one of those metric names are evaluated (the
    fast path after ingest wrote them). ``between`` is called between the selections of a
    long cycle: the periodic job lets the ingest fast path run there, so a breach never waits
    for a whole cycle of thousands of rules.
    """
    now = now or timezone.now()
    stats = EvalStats()
    open_by_rule: dict[int, dict[str, Alert]] = defaultdict(dict)
    for alert in Alert.objects.filter(rule__isnull=False, state__in=Alert.ACTIVE_STATES):
        open_by_rule[alert.rule_id][alert.labels_key] = alert
    rules = list(AlertRule.objects.filter(enabled=True))
    if metrics is not None:
        rules = [r for r in rules if rule_metrics(r) & metrics]
    by_org: dict[int, list[AlertRule]] = defaultdict(list)
    for rule in rules:
        by_org[rule.organization_id].append(rule)
    for org_id, org_rules in sorted(by_org.items()):
        # Every query of these rules sees only this organisation's series, hosts and logs.
        with scope.use_organization(org_id):
            _evaluate_rules(org_rules, now, stats, open_by_rule, between)
    if metrics is None:
        close_orphans(now, stats)
    return stats


def _evaluate_rules(
    rules: list[AlertRule],
    now: datetime,
    stats: EvalStats,
    open_by_rule: dict[int, dict[str, Alert]],
    between: Callable[[], object] | None = None,
) -> None:
    """Evaluate the rules of one organisation (the caller sets its scope)."""
    cache, invalid, keys = _prefetch_batched(rules, now, stats, between)
    for count, rule in enumerate(rules, 1):
        if between is not None and count % YIELD_EVERY_RULES == 0:
            between()
        stats.rules += 1
        if rule.pk in invalid:
            continue
        try:
            key = keys.get(rule.pk)
            result = cache[key] if key in cache else _cached_query(rule, now, cache)
            evaluate_rule(rule, now, stats, result=result, open_alerts=open_by_rule.get(rule.pk, {}))
        except Exception as exc:  # record and go on with the next rule
            log.exception("alerting: rule %s failed to evaluate", rule.name)
            stats.errors[rule.name] = str(exc)
    stats.distinct_queries += len(cache)


def close_orphans(now: datetime, stats: EvalStats) -> None:
    """End the open alerts of rules that were disabled or deleted (nothing would ever resolve them)."""
    orphans = Alert.objects.filter(
        state__in=Alert.ACTIVE_STATES, manual=False, source=Alert.FLEETWATCH
    ).filter(Q(rule__isnull=True) | Q(rule__enabled=False))
    for alert in orphans:
        to_state = Alert.RESOLVED if alert.state == Alert.FIRING else Alert.INACTIVE
        extra = {"resolved_at": now} if to_state == Alert.RESOLVED else {}
        _transition(alert, to_state, alert.value, now, stats, **extra)


def _cache_key(rule: AlertRule, query: dict[str, Any]) -> str:
    return json.dumps([rule.query_type, query, rule.nodata_timeout_seconds], sort_keys=True)


def _prefetch_batched(
    rules: list[AlertRule], now: datetime, stats: EvalStats, between: Callable[[], object] | None = None
) -> tuple[dict[str, q.QueryResult], set[int], dict[int, str]]:
    """Evaluate the metric rules that share a selection together, one scan per selection.

    Return the results by cache key, the ids of the rules whose query is invalid, and the
    cache key of each valid rule (validated once per cycle).
    """
    selections: dict[str, list[tuple[AlertRule, dict[str, Any]]]] = defaultdict(list)
    log_rules: list[tuple[AlertRule, dict[str, Any]]] = []
    invalid: set[int] = set()
    keys: dict[int, str] = {}
    for rule in rules:
        try:
            query = q.get(rule.query_type).validate(rule.query)
        except ValueError as exc:
            stats.errors[rule.name] = str(exc)
            invalid.add(rule.pk)
            continue
        keys[rule.pk] = _cache_key(rule, query)
        if rule.query_type == log_query.LogCountQuery.name:
            log_rules.append((rule, query))
        elif q.batchable(rule.query_type, query):
            base = {k: query[k] for k in ("metric", "matchers", "group_by")}
            selections[json.dumps([base, rule.nodata_timeout_seconds], sort_keys=True)].append((rule, query))
    cache: dict[str, q.QueryResult] = {}
    _prefetch_logs(log_rules, now, cache)
    for members in selections.values():
        first_rule, first = members[0]
        base = {k: first[k] for k in ("metric", "matchers", "group_by")}
        specs = sorted({(query["aggregation"], query["window"]) for _, query in members})
        results = q.evaluate_metric_batch(base, specs, now, first_rule.nodata_timeout_seconds)
        if between is not None:
            between()
        for rule, query in members:
            cache[keys[rule.pk]] = results[(query["aggregation"], query["window"])]
    return cache, invalid, keys


def _prefetch_logs(
    members: list[tuple[AlertRule, dict[str, Any]]], now: datetime, cache: dict[str, q.QueryResult]
) -> None:
    """Count the records of every log_count rule in one statement; if it fails, each rule runs alone."""
    distinct = {_cache_key(rule, query): (query, rule.nodata_timeout_seconds) for rule, query in members}
    if len(distinct) < 2:
        return
    queries, lookbacks = zip(*distinct.values(), strict=True)
    try:
        results = log_query.evaluate_log_batch(list(queries), now, list(lookbacks))
    except Exception:  # one rule's failure must not hide the others: they are retried one by one
        log.exception("alerting: the shared count of %d log rules failed", len(distinct))
        return
    cache.update(zip(distinct, results, strict=True))


def _cached_query(rule: AlertRule, now: datetime, cache: dict[str, q.QueryResult]) -> q.QueryResult:
    query_type = q.get(rule.query_type)
    query = query_type.validate(rule.query)
    key = _cache_key(rule, query)
    if key not in cache:
        cache[key] = query_type.evaluate(query, now, rule.nodata_timeout_seconds)
    return cache[key]


def evaluate_rule(
    rule: AlertRule,
    now: datetime,
    stats: EvalStats | None = None,
    result: q.QueryResult | None = None,
    open_alerts: dict[str, Alert] | None = None,
) -> EvalStats:
    """Evaluate one rule and apply the transitions it implies."""
    stats = stats or EvalStats()
    if result is None:
        result = _cached_query(rule, now, {})
    if open_alerts is None:
        open_alerts = {
            a.labels_key: a for a in Alert.objects.filter(rule=rule, state__in=Alert.ACTIVE_STATES)
        }
    compare, threshold = COMPARISONS[rule.comparison], rule.threshold
    groups = result.groups
    stats.groups += len(groups)
    # The common case is healthy with nothing open: only the groups that meet the threshold
    # (found by bisection in the result's sorted values, shared by every rule on it), those
    # without a value, and those with an open alert need a look.
    todo = result.candidates(rule.comparison, threshold)
    if open_alerts:
        in_todo = set(todo)
        pending = [key for key in open_alerts if key in groups and key not in in_todo]
        if pending:  # in the order of the groups, as a full scan would visit them
            position = {key: i for i, key in enumerate(groups)}
            todo = sorted([*todo, *pending], key=position.__getitem__)
    for key in todo:
        group = groups[key]
        alert = open_alerts.get(key)
        if alert is None and group.value is not None and not compare(group.value, threshold):
            continue  # NaN, or a value on the boundary of a hysteresis rule: as before
        _evaluate_group(rule, key, group, alert, now, stats)
    for key, alert in open_alerts.items():
        if key not in result.groups:  # the series are gone: no data, or the query's value for "none" (0)
            absent = None if result.absent_value is None else q.GroupValue(alert.labels, result.absent_value)
            _evaluate_group(rule, key, absent, alert, now, stats)
    return stats


def _evaluate_group(
    rule: AlertRule,
    key: str,
    group: q.GroupValue | None,
    alert: Alert | None,
    now: datetime,
    stats: EvalStats,
) -> None:
    labels = group.labels if group else (alert.labels if alert else {})
    value = group.value if group else None
    breach = _breach(rule, alert, group, now)
    if breach is not None:
        _apply(rule, alert, key, labels, value, breach, now, stats)


def _breach(rule: AlertRule, alert: Alert | None, group: q.GroupValue | None, now: datetime) -> bool | None:
    """Return whether the group breaches; None means no change (no data, policy keep or not timed out)."""
    if group is not None and group.value is not None:
        return rule.breaches(group.value, firing=alert is not None and alert.state == Alert.FIRING)
    last = group.last_ts if group else None
    if last is not None and now - last < timedelta(seconds=rule.nodata_timeout_seconds):
        return None
    if rule.nodata_policy == AlertRule.NODATA_ALERT:
        return True
    if rule.nodata_policy == AlertRule.NODATA_OK:
        return False
    return None


def _apply(
    rule: AlertRule,
    alert: Alert | None,
    key: str,
    labels: dict[str, str],
    value: float | None,
    breach: bool,
    now: datetime,
    stats: EvalStats,
) -> None:
    if alert is None:
        if breach:
            _open(rule, key, labels, value, now, stats)
        return
    if alert.state == Alert.PENDING:
        if not breach:
            _transition(alert, Alert.INACTIVE, value, now, stats)
        elif now - alert.started_at >= timedelta(seconds=rule.for_seconds):
            texts = texts_for(rule, alert.labels, value)
            _transition(alert, Alert.FIRING, value, now, stats, fired_at=now, last_breach_at=now, **texts)
        else:
            Alert.objects.filter(pk=alert.pk, state=Alert.PENDING).update(
                value=value, last_breach_at=now, **texts_for(rule, alert.labels, value)
            )
        return
    if breach:
        _still_firing(rule, alert, value, now, stats)
        return
    kept = alert.last_breach_at and now - alert.last_breach_at < timedelta(
        seconds=rule.keep_firing_for_seconds
    )
    if kept:
        Alert.objects.filter(pk=alert.pk, state=Alert.FIRING).update(
            value=value, updated_at=now, **texts_for(rule, alert.labels, value)
        )
    else:
        _transition(alert, Alert.RESOLVED, value, now, stats, resolved_at=now)


def _still_firing(
    rule: AlertRule, alert: Alert, value: float | None, now: datetime, stats: EvalStats
) -> None:
    """Refresh a firing alert and its templated texts (a repeat tells the current value).

    A higher severity is a recorded change that clears the acknowledgement.
    """
    if severity_rank(rule.severity) > severity_rank(alert.severity):
        labels = {**alert.labels, "severity": rule.severity}
        with transaction.atomic():
            changed = Alert.objects.filter(pk=alert.pk, state=Alert.FIRING, severity=alert.severity).update(
                severity=rule.severity,
                labels=labels,
                **texts_for(rule, labels, value),
                acknowledged_by="",
                acknowledged_at=None,
                ack_comment="",
                value=value,
                last_breach_at=now,
                updated_at=now,
            )
            if changed:
                _event(
                    alert, Alert.FIRING, Alert.FIRING, value, now, note=f"{SEVERITY_RAISED} {rule.severity}"
                )
                stats.transitions.append((alert.fingerprint, "severity", rule.severity))
        return
    Alert.objects.filter(pk=alert.pk, state=Alert.FIRING).update(
        value=value, last_breach_at=now, **texts_for(rule, alert.labels, value)
    )


def texts_for(rule: AlertRule, labels: dict[str, Any], value: float | None) -> dict[str, Any]:
    """Render the rule's annotations for ``value``: the alert's ``summary``, ``description`` and ``annotations``."""
    annotations = {k: render(v, labels, value) for k, v in (rule.annotations or {}).items()}
    return {
        "summary": annotations.get("summary", rule.name),
        "description": annotations.get("description", rule.description),
        "annotations": annotations,
    }


def alert_labels(rule: AlertRule, group_labels: dict[str, str], value: float | None) -> dict[str, str]:
    extra = {k: render(v, group_labels, value) for k, v in (rule.labels or {}).items()}
    return {**extra, **group_labels, "alertname": rule.name, "severity": rule.severity}


def _open(
    rule: AlertRule, key: str, labels: dict[str, str], value: float | None, now: datetime, stats: EvalStats
) -> None:
    """Open an episode; if another evaluator opened it first, the unique index says so and we step back."""
    state = Alert.FIRING if rule.for_seconds == 0 else Alert.PENDING
    full = alert_labels(rule, labels, value)
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                rule=rule,
                organization_id=rule.organization_id,
                name=rule.name,
                labels=full,
                labels_key=key,
                severity=rule.severity,
                state=state,
                value=value,
                **texts_for(rule, full, value),
                started_at=now,
                fired_at=now if state == Alert.FIRING else None,
                last_breach_at=now,
                updated_at=now,
                flapping=is_flapping(rule.pk, key, now),
            )
            _event(alert, Alert.INACTIVE, state, value, now)
    except IntegrityError:
        _blocked(rule, key, value, now, stats)
        return
    stats.transitions.append((alert.fingerprint, Alert.INACTIVE, state))


BLOCKED_NOTE = "blocks the episode of rule"


def _blocked(rule: AlertRule, key: str, value: float | None, now: datetime, stats: EvalStats) -> None:
    """The open episode that won the unique index: this rule's (another evaluator, fine) or not.

    An open alert of the same name and labels that is not this rule's (a manual alert named
    like the rule) keeps the rule from opening its episode until it is resolved: say so in
    the log and, once, in the blocking alert's history.
    """
    holder = Alert.objects.filter(name=rule.name, labels_key=key, state__in=Alert.ACTIVE_STATES).first()
    if holder is None or holder.rule_id == rule.pk:
        return
    stats.blocked.append((rule.name, key))
    kind = "manual alert" if holder.manual else "alert"
    note = f"{BLOCKED_NOTE} {rule.name!r} ({key or 'no labels'}); resolve it to let the rule alert"
    if AlertEvent.objects.filter(alert=holder, note=note).exists():
        log.debug("alerting: rule %s {%s} still blocked by %s %s", rule.name, key, kind, holder.pk)
        return
    log.warning(
        "alerting: rule %s breaches for {%s} but open %s %s of the same name and labels blocks its "
        "episode; nothing is raised for the rule until that alert is resolved",
        rule.name,
        key,
        kind,
        holder.pk,
    )
    _event(holder, holder.state, holder.state, value, now, note=note)


def _transition(
    alert: Alert, to_state: str, value: float | None, now: datetime, stats: EvalStats, **fields: Any
) -> bool:
    """Move ``alert`` from its current state to ``to_state`` if nobody else did; record it once."""
    with transaction.atomic():
        changed = Alert.objects.filter(pk=alert.pk, state=alert.state).update(
            state=to_state, value=value, updated_at=now, **fields
        )
        if changed != 1:
            return False
        _event(alert, alert.state, to_state, value, now)
    stats.transitions.append((alert.fingerprint, alert.state, to_state))
    return True


def _event(
    alert: Alert, from_state: str, to_state: str, value: float | None, now: datetime, **extra: Any
) -> None:
    AlertEvent.objects.create(
        alert=alert,
        rule_id=alert.rule_id,
        labels_key=alert.labels_key,
        from_state=from_state,
        to_state=to_state,
        value=value,
        at=now,
        **extra,
    )


def is_flapping(rule_id: int | None, labels_key: str, now: datetime) -> bool:
    """Return True when the rule and label set changed state more than the threshold within the window."""
    if rule_id is None:
        return False
    changes = AlertEvent.objects.filter(
        rule_id=rule_id,
        labels_key=labels_key,
        at__gt=now - FLAP_WINDOW,
        to_state__in=[Alert.FIRING, Alert.RESOLVED],
    ).count()
    return changes >= FLAP_THRESHOLD
