"""Alerts received from an Alertmanager's webhook, kept read-only beside fleetwatch's own.

Each alert of the payload opens, refreshes or resolves one episode keyed by its name
(``alertname``) and its other labels, with ``source = alertmanager``; every transition is
an AlertEvent like those of rule alerts, so the alert list and history show them. They are
never dispatched to fleetwatch's channels (Alertmanager notified its own receivers).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction

from collector_server.alerts import matchers
from collector_server.alerts.models import SEVERITIES, SEVERITY_ALIASES, Alert, AlertEvent

ACTOR = "alertmanager"


@dataclass
class InboundResult:
    opened: int = 0
    refreshed: int = 0
    resolved: int = 0
    ignored: int = 0  # resolved alerts fleetwatch never saw firing


def severity_of(labels: dict[str, str]) -> str:
    raw = labels.get("severity", "").lower()
    return raw if raw in SEVERITIES else SEVERITY_ALIASES.get(raw, "medium")  # unknown ones: medium


def apply(alerts: list[dict[str, Any]], now: datetime) -> InboundResult:
    """Record the webhook's alerts (validated by the serializer) in one transaction."""
    result = InboundResult()
    with transaction.atomic():
        for item in alerts:
            _apply_one(item, now, result)
    return result


def _open_episode(name: str, key: str) -> Alert | None:
    return (
        Alert.objects.select_for_update()
        .filter(source=Alert.ALERTMANAGER, name=name, labels_key=key, state=Alert.FIRING)
        .first()
    )


def _apply_one(item: dict[str, Any], now: datetime, result: InboundResult) -> None:
    labels = item["labels"]
    name = labels.get("alertname", "")
    identity = {k: v for k, v in labels.items() if k not in ("alertname", "severity")}
    key = matchers.labels_key(identity)
    alert = _open_episode(name, key)
    annotations = item.get("annotations") or {}
    if item["status"] == "resolved":
        if alert is None:
            result.ignored += 1
            return
        ended = item.get("endsAt") or now
        Alert.objects.filter(pk=alert.pk).update(state=Alert.RESOLVED, resolved_at=ended, updated_at=now)
        _event(alert, Alert.FIRING, Alert.RESOLVED, ended, item)
        result.resolved += 1
        return
    fields = {
        "labels": labels,
        "severity": severity_of(labels),
        "summary": annotations.get("summary", "") or name,
        "description": annotations.get("description", ""),
        "annotations": {**annotations, "generatorURL": item.get("generatorURL", "")},
        "updated_at": now,
    }
    if alert is not None:
        Alert.objects.filter(pk=alert.pk).update(**fields)
        result.refreshed += 1
        return
    started = item.get("startsAt") or now
    alert = Alert.objects.create(
        source=Alert.ALERTMANAGER,
        name=name,
        labels_key=key,
        state=Alert.FIRING,
        started_at=started,
        fired_at=started,
        created_by=ACTOR,
        **fields,
    )
    _event(alert, Alert.INACTIVE, Alert.FIRING, started, item)
    result.opened += 1


def _event(alert: Alert, from_state: str, to_state: str, at: datetime, item: dict[str, Any]) -> None:
    AlertEvent.objects.create(
        alert=alert,
        labels_key=alert.labels_key,
        from_state=from_state,
        to_state=to_state,
        at=at,
        actor=ACTOR,
        note=f"fingerprint {item.get('fingerprint', '')}".strip(),
    )
