"""The organisation scope of the running code, in one place.

A request's scope is set by ``OrganizationScopeMiddleware`` (nothing visible until the
caller is known) and by the DRF permission class once the token or session user is
authenticated; workers set it per organisation with ``use_scope``. Code with no scope set
(workers between organisations, migrations, management commands) sees everything.

The ORM applies the scope through ``OrgManager`` (the default manager of every
organisation-owned model, so a view that forgets the scope still sees only its
organisation); raw SQL asks ``sql_filter(column)`` for its WHERE clause.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import models

from collector_server.orgs import roles


@dataclass(frozen=True)
class Scope:
    """What the caller may see: ``org_ids`` None means every organisation (a superuser)."""

    org_ids: frozenset[int] | None
    write_org_id: int | None = None
    roles: dict[int, str] = field(default_factory=dict)
    superuser: bool = False

    def role_in(self, org_id: int | None) -> str | None:
        if org_id is None:
            return None
        if self.superuser:
            return roles.ADMIN
        return self.roles.get(org_id)

    def best_role(self) -> str | None:
        if self.superuser:
            return roles.ADMIN
        return max(self.roles.values(), key=roles.rank, default=None)

    def sees(self, org_id: int | None) -> bool:
        return self.org_ids is None or org_id in self.org_ids


NOTHING = Scope(org_ids=frozenset())
_current: ContextVar[Scope | None] = ContextVar("fleetwatch_scope", default=None)


def current() -> Scope | None:
    """Return the active scope, or None where no scope applies (background code)."""
    return _current.get()


def activate(scope: Scope | None) -> Any:
    """Set the scope; return the token for ``deactivate``."""
    return _current.set(scope)


def deactivate(token: Any) -> None:
    _current.reset(token)


@contextlib.contextmanager
def use_scope(scope: Scope | None) -> Iterator[Scope | None]:
    token = activate(scope)
    try:
        yield scope
    finally:
        deactivate(token)


def for_organization(org_id: int) -> Scope:
    """The scope of background work done for one organisation (rule evaluation, dispatch)."""
    return Scope(org_ids=frozenset({org_id}), write_org_id=org_id, roles={org_id: roles.ADMIN})


def use_organization(org_id: int) -> contextlib.AbstractContextManager[Scope | None]:
    return use_scope(for_organization(org_id))


def sql_filter(column: str) -> tuple[str, list[Any]]:
    """Return (clause, params) restricting ``column`` (an organisation id) to the active scope."""
    scope = current()
    if scope is None or scope.org_ids is None:
        return "TRUE", []
    return f"{column} = ANY(%s)", [sorted(scope.org_ids)]


def sql_filter_named(column: str, name: str = "org_ids") -> tuple[str, dict[str, Any]]:
    """``sql_filter`` for queries with named (``%(name)s``) parameters."""
    clause, params = sql_filter(column)
    if not params:
        return clause, {}
    return clause.replace("%s", f"%({name})s"), {name: params[0]}


def restrict(queryset: models.QuerySet, path: str) -> models.QuerySet:
    """Filter ``queryset`` on ``path`` (e.g. "organization", "alert__organization") by the scope."""
    scope = current()
    if scope is None or scope.org_ids is None:
        return queryset
    key = path if path.endswith("_id") else f"{path}_id"
    return queryset.filter(**{f"{key}__in": sorted(scope.org_ids)})


class OrgQuerySet(models.QuerySet):
    """``all()`` re-applies the scope, so class-level view querysets are scoped at request time.

    A queryset keeps the scope it was built under: one built inside a request (a view class
    imported lazily) would carry that request's filter; using it under another scope raises
    instead of answering with the wrong organisation's rows. ``OrganizationScopeMiddleware``
    imports every view before the first request for that reason.
    """

    built_under: Scope | None = None

    def _clone(self) -> OrgQuerySet:
        clone = super()._clone()
        clone.built_under = self.built_under
        return clone

    def all(self) -> OrgQuerySet:
        if self.built_under is not None and self.built_under != current():
            raise RuntimeError(
                f"a {self.model.__name__} queryset built under one organisation scope is used under another; "
                "build it per request (get_queryset) or at import time"
            )
        return restrict(super().all(), getattr(self.model._default_manager, "org_path", "organization"))


class OrgManager(models.Manager):
    """The default manager of an organisation-owned model: scoped to the active organisation(s)."""

    def __init__(self, path: str = "organization") -> None:
        super().__init__()
        self.org_path = path

    def deconstruct(self) -> tuple:
        return (False, "collector_server.orgs.scope.OrgManager", None, (self.org_path,), {})

    def get_queryset(self) -> models.QuerySet:
        queryset = OrgQuerySet(model=self.model, using=self._db, hints=self._hints)
        queryset.built_under = current()
        return restrict(queryset, self.path_of_model())

    def path_of_model(self) -> str:
        """The model's path: a related manager (``policy.steps``) is built without the path argument."""
        default = getattr(self.model, "_default_manager", None)
        if isinstance(default, OrgManager) and default is not self:
            return default.org_path
        return self.org_path


def organization_field() -> models.ForeignKey:
    """The ``organization`` field of an organisation-owned model.

    Left empty, it is filled when the object is saved (``fill_organization``, a pre_save
    receiver): the active scope's write organisation, else the default one. No default is
    computed when an object is only built (no database query for an unsaved instance).
    """
    return models.ForeignKey(
        "orgs.Organization",
        on_delete=models.PROTECT,
        null=False,
        blank=True,
        default=None,
        related_name="+",
        help_text="Empty: the organisation you act in.",
    )


def fill_organization(
    sender: type[models.Model], instance: models.Model, raw: bool = False, **kwargs: Any
) -> None:
    """pre_save: give an organisation-owned object without an organisation the one being written to."""
    if raw or not isinstance(getattr(sender, "_default_manager", None), OrgManager):
        return
    if getattr(instance, "organization_id", 0) is None:
        instance.organization_id = write_organization_id()


def default_organization_id() -> int:
    """The id of the DEFAULT_ORGANIZATION, created when missing.

    Not cached: a flushed test database or a renamed setting must never leave a stale id
    behind; the lookup is one indexed SELECT, made once per ingest chunk at most.
    """
    from collector_server.orgs.models import Organization

    slug = settings.DEFAULT_ORGANIZATION
    org, _ = Organization.objects.get_or_create(slug=slug, defaults={"name": slug})
    return org.pk


def write_organization_id() -> int:
    """The organisation new objects go to: the scope's, else the default one."""
    scope = current()
    if scope is not None and scope.write_org_id is not None:
        return scope.write_org_id
    return default_organization_id()


def organisation_for_host(
    agent_id: str,
    host_org_id: int | None = None,
    default_id: int | None = None,
    enrolled_org_id: int | None = None,
) -> int:
    """Return the organisation a host's data belongs to: the one place ingest decides it.

    The host row's organisation when it has one; else its enrollment's (a signed batch's
    agent id starts with the enrollment's key id, or the server's receivers name the caller's
    organisation, see ``queued_agent_id``); else the default organisation.
    """
    del agent_id
    if host_org_id is not None:
        return host_org_id
    if enrolled_org_id is not None:
        return enrolled_org_id
    return default_id if default_id is not None else default_organization_id()


def queued_agent_id(source: str, host: str, org_id: int | None) -> str:
    """The agent id of a batch the server queues for a caller (remote write, OTLP).

    The caller's organisation is part of it: the same host name pushed by two organisations
    stays two hosts, each stored in its organisation (``agent_prefix_org``).
    """
    return f"{source}:{host}" if org_id is None else f"{source}@{org_id}:{host}"


def agent_prefix(agent_id: str) -> str:
    """What precedes the first ':' of an agent id: an enrollment's key id or a queued batch's source."""
    prefix, sep, _ = agent_id.partition(":")
    return prefix if sep else ""


def agent_prefix_org(prefix: str) -> int | None:
    """The organisation id a queued batch's prefix names (``source@<id>``), else None."""
    _, sep, org = prefix.rpartition("@")
    return int(org) if sep and org.isdigit() else None


def organisations_for_agents(agent_ids: list[str]) -> dict[str, int]:
    """Map each agent id of an ingest chunk to its organisation, in one query.

    A '/component' suffix (e.g. '<id>/apps') is the same agent: the same host row. A new
    host's organisation is its enrollment's (key id prefix) or the one a server-queued batch
    names (an existing organisation only); else the default. The default organisation comes
    from the same statement (``fleetwatch_default_organization()``, the column default's
    function), so the hot path pays one round trip per chunk.
    """
    from django.db import connection

    keys = {agent_id: agent_id.partition("/")[0] for agent_id in agent_ids}
    prefixes = {key: agent_prefix(key) for key in keys.values()}
    named = sorted({org for p in prefixes.values() if (org := agent_prefix_org(p)) is not None})
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'h', agent_id, organization_id FROM monitoring_host WHERE agent_id = ANY(%s) "
            "UNION ALL SELECT 'e', key_id, organization_id FROM enrollments_enrollment WHERE key_id = ANY(%s) "
            "UNION ALL SELECT 'o', id::text, id FROM orgs_organization WHERE id = ANY(%s::bigint[]) "
            "UNION ALL SELECT 'd', NULL, fleetwatch_default_organization(%s)",
            [
                sorted(set(keys.values())),
                sorted({p for p in prefixes.values() if p}),
                named,
                settings.DEFAULT_ORGANIZATION,
            ],
        )
        rows = cursor.fetchall()
    known = {agent: org for kind, agent, org in rows if kind == "h"}
    enrolled = {key_id: org for kind, key_id, org in rows if kind == "e"}
    existing = {org for kind, _, org in rows if kind == "o"}
    default_id = next(org for kind, _, org in rows if kind == "d")

    def enrolled_org(key: str) -> int | None:
        prefix = prefixes[key]
        if prefix in enrolled:
            return enrolled[prefix]
        named_org = agent_prefix_org(prefix)
        return named_org if named_org in existing else None

    return {
        agent_id: organisation_for_host(agent_id, known.get(key), default_id, enrolled_org(key))
        for agent_id, key in keys.items()
    }
