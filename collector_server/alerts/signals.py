"""Keep the generated routes in step with rules, channels and the root route (see route_sync)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from collector_server.alerts import route_sync
from collector_server.alerts.models import AlertRule, Channel, Route


def _rebuild_later(**kwargs: Any) -> None:
    if route_sync.tree_is_on():
        transaction.on_commit(route_sync.rebuild)


def _route_saved(sender: type, instance: Route, created: bool, **kwargs: Any) -> None:
    if created and instance.parent_id is None:
        transaction.on_commit(route_sync.rebuild)


def _organization_created(
    sender: type, instance: Any, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    """A new organisation starts with the default rules, as those existing at migration did."""
    if created and not raw:
        from collector_server.alerts.defaults import ensure_default_rules

        ensure_default_rules(instance.pk)


def _organization_deleting(sender: type, organization: Any, **kwargs: Any) -> None:
    """The default rules the organisation got at creation go with it (if no alert holds them)."""
    from collector_server.alerts.defaults import delete_default_rules

    delete_default_rules(organization.pk)


def connect() -> None:
    from collector_server.orgs.models import Organization, organization_deleting

    organization_deleting.connect(_organization_deleting, dispatch_uid="alerts-default-rules-go")
    post_save.connect(_organization_created, sender=Organization, dispatch_uid="alerts-default-rules")
    for model in (AlertRule, Channel):
        post_save.connect(_rebuild_later, sender=model, dispatch_uid=f"routes-{model.__name__}-save")
        post_delete.connect(_rebuild_later, sender=model, dispatch_uid=f"routes-{model.__name__}-delete")
    m2m_changed.connect(
        _rebuild_later, sender=AlertRule.channels.through, dispatch_uid="routes-rule-channels"
    )
    post_save.connect(_route_saved, sender=Route, dispatch_uid="routes-root-created")
