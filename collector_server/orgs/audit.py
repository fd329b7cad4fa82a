"""The audit trail: who changed what, when, in which organisation, with the fields before and after.

Generic by registration: ``audit.register(Model, secret_fields=..., maskers=...)`` makes every
create, change and delete of the model (and changes of its many-to-many fields) write an
``AuditEvent`` right after the write, from Django's model signals (django-auditlog's approach;
see docs/organisations.md for why not the library itself). Operator actions that are not
plain saves (acknowledge, resolve, a manual alert) call ``record()``.

The actor is the request's user (read when the event is written, so a DRF token user counts),
or ``use_actor(user)`` in management commands; background work has none ("system").
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save

SECRET_MASK = "********"
Masker = Callable[[Any, Any], Any]  # (instance, value) -> masked value


@dataclass
class Registration:
    model: type[models.Model]
    secret_fields: frozenset[str] = frozenset()
    exclude: frozenset[str] = frozenset()
    maskers: dict[str, Masker] = field(default_factory=dict)


REGISTRY: dict[type[models.Model], Registration] = {}
_actor_source: ContextVar[Any] = ContextVar("fleetwatch_audit_actor", default=None)


def set_actor_source(source: Any) -> Any:
    """``source`` is a request (its ``user`` is read late) or a user; return the reset token."""
    return _actor_source.set(source)


def reset_actor_source(token: Any) -> None:
    _actor_source.reset(token)


@contextlib.contextmanager
def use_actor(user: Any) -> Iterator[None]:
    token = set_actor_source(user)
    try:
        yield
    finally:
        reset_actor_source(token)


def current_actor() -> Any:
    source = _actor_source.get()
    user = getattr(source, "user", source) if source is not None and not _is_user(source) else source
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def _is_user(value: Any) -> bool:
    return hasattr(value, "get_username")


def register(
    model: type[models.Model],
    secret_fields: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    maskers: dict[str, Masker] | None = None,
) -> None:
    """Audit every change of ``model``; ``secret_fields`` are masked, ``exclude`` left out."""
    REGISTRY[model] = Registration(model, frozenset(secret_fields), frozenset(exclude), dict(maskers or {}))
    uid = f"audit-{model._meta.label}"
    pre_save.connect(_before_save, sender=model, dispatch_uid=f"{uid}-pre")
    post_save.connect(_after_save, sender=model, dispatch_uid=f"{uid}-post")
    post_delete.connect(_after_delete, sender=model, dispatch_uid=f"{uid}-delete")
    for m2m in model._meta.many_to_many:
        m2m_changed.connect(_m2m_changed, sender=m2m.remote_field.through, dispatch_uid=f"{uid}-{m2m.name}")


def snapshot(instance: models.Model) -> dict[str, Any]:
    """The instance's concrete fields as JSON values, secrets masked."""
    reg = REGISTRY[type(instance)]
    out: dict[str, Any] = {}
    for f in instance._meta.concrete_fields:
        if f.name in reg.exclude or f.primary_key:
            continue
        value = _jsonable(f.value_from_object(instance))
        if f.name in reg.secret_fields:
            value = SECRET_MASK if value not in (None, "") else value
        elif f.name in reg.maskers:
            value = reg.maskers[f.name](instance, value)
        out[f.attname if f.is_relation else f.name] = value
    return out


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _before_save(
    sender: type[models.Model], instance: models.Model, raw: bool = False, **kwargs: Any
) -> None:
    if raw:
        return
    old = sender._base_manager.filter(pk=instance.pk).first() if instance.pk is not None else None
    instance._audit_before = snapshot(old) if old is not None else None


def _after_save(
    sender: type[models.Model], instance: models.Model, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    if raw:
        return
    before = None if created else getattr(instance, "_audit_before", None)
    after = snapshot(instance)
    if before is None:
        changes = {name: [None, value] for name, value in after.items()}
    else:
        changes = {
            name: [before.get(name), value] for name, value in after.items() if before.get(name) != value
        }
        if not changes:
            return
    record("create" if created else "update", instance, changes)


def _after_delete(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    record("delete", instance, {name: [value, None] for name, value in snapshot(instance).items()})


def _m2m_changed(
    sender: Any, instance: models.Model, action: str, reverse: bool, model: Any, **kwargs: Any
) -> None:
    if reverse or type(instance) not in REGISTRY:
        return
    name = next((m.name for m in instance._meta.many_to_many if m.remote_field.through is sender), None)
    if name is None:
        return
    current = sorted(getattr(instance, name).values_list("pk", flat=True))
    if action.startswith("pre_"):
        instance._audit_m2m = {**getattr(instance, "_audit_m2m", {}), name: current}
    elif action.startswith("post_"):
        before = getattr(instance, "_audit_m2m", {}).get(name)
        if before != current:
            record("update", instance, {name: [before, current]})


def record(
    action: str, instance: models.Model, changes: dict[str, Any] | None = None, org_id: int | None = None
) -> None:
    """Write one audit event about ``instance`` (its organisation unless ``org_id`` is given)."""
    from collector_server.orgs.models import AuditEvent
    from collector_server.orgs.permissions import organization_id_of

    actor = current_actor()
    AuditEvent.all_objects.create(
        organization_id=org_id if org_id is not None else organization_id_of(instance),
        actor=actor,
        actor_name=actor.get_username() if actor is not None else "",
        action=action,
        object_type=instance._meta.label_lower,
        object_id=str(instance.pk if instance.pk is not None else ""),
        object_repr=str(instance)[:200],
        changes=_jsonable(changes or {}),
    )
