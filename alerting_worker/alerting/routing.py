"""The routing tree: which receivers an alert goes to, with which grouping and timers.

Alertmanager's semantics: the root route takes every alert; an alert descends into the
children whose matchers accept it, in order, stopping after the first match unless that
child has ``continue``; when no child matches, the node itself is the match. Every match
notifies its receiver, grouped by its ``group_by`` with its own ``group_wait``,
``group_interval`` and ``repeat_interval``; a blank setting is the parent's.

Each organisation has its own tree. With no root route the tree is off and dispatch uses each channel's own settings and the
rules' channel lists (the behaviour before routes existed).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from collector_server.alerts import matchers as m
from collector_server.alerts.fingerprint import ROOT_ROUTE_KEY
from collector_server.alerts.models import DEFAULT_GROUP_INTERVAL, DEFAULT_GROUP_WAIT, Route

DEFAULT_GROUP_BY = ("alertname",)


@dataclass(frozen=True)
class RoutePolicy:
    """A route's settings after inheritance."""

    route_id: int | None
    route_key: str
    channel_id: int | None
    group_by: tuple[str, ...]
    group_wait: int
    group_interval: int
    repeat: int | None  # None: the receiver's repeat interval
    escalation_id: int | None


def matchers_text(matchers: list[dict[str, str]]) -> str:
    """Alertmanager's Matchers.String(): ``{team="db",env=~"prod.*"}``."""
    import json

    return (
        "{"
        + ",".join(f"{x['name']}{x['op']}{json.dumps(x['value'], ensure_ascii=False)}" for x in matchers)
        + "}"
    )


class Tree:
    """The routes, loaded once per dispatch."""

    def __init__(self, routes: list[Route]) -> None:
        self.children: dict[int | None, list[Route]] = defaultdict(list)
        for route in sorted(routes, key=lambda r: (r.position, r.pk)):
            self.children[route.parent_id].append(route)
        roots = self.children.get(None, [])
        self.root = roots[0] if roots else None
        self.policies: dict[int, RoutePolicy] = {}
        if self.root is not None:
            self._inherit(self.root, None)

    def _inherit(self, route: Route, parent: RoutePolicy | None) -> None:
        key = ROOT_ROUTE_KEY if parent is None else f"{parent.route_key}/{matchers_text(route.matchers)}"
        policy = RoutePolicy(
            route_id=route.pk,
            route_key=key,
            channel_id=route.channel_id or (parent.channel_id if parent else None),
            group_by=tuple(route.group_by)
            if route.group_by is not None
            else (parent.group_by if parent else DEFAULT_GROUP_BY),
            group_wait=_pick(route.group_wait_seconds, parent and parent.group_wait, DEFAULT_GROUP_WAIT),
            group_interval=_pick(
                route.group_interval_seconds, parent and parent.group_interval, DEFAULT_GROUP_INTERVAL
            ),
            repeat=_pick(route.repeat_interval_seconds, parent and parent.repeat, None),
            escalation_id=route.escalation_id or (parent.escalation_id if parent else None),
        )
        self.policies[route.pk] = policy
        for child in self.children.get(route.pk, []):
            self._inherit(child, policy)

    def match(self, labels: Mapping[str, Any]) -> list[RoutePolicy]:
        """Return the policies of the routes this alert ends at (none when the tree is off)."""
        if self.root is None:
            return []
        return [self.policies[r.pk] for r in self._match(self.root, labels)]

    def _match(self, route: Route, labels: Mapping[str, Any]) -> list[Route]:
        if not m.matches(m.normalize(route.matchers), labels):
            return []
        found: list[Route] = []
        for child in self.children.get(route.pk, []):
            matched = self._match(child, labels)
            found.extend(matched)
            if matched and not child.continue_matching:
                break
        return found or [route]


def _pick(own: int | None, inherited: int | bool | None, default: int | None) -> int | None:
    if own is not None:
        return own
    if inherited is not None and inherited is not False:
        return int(inherited)
    return default


def load_tree(org_id: int) -> Tree:
    """The routing tree of one organisation (each organisation has its own root)."""
    return Tree(list(Route.objects.filter(organization_id=org_id)))


def load_trees() -> dict[int, Tree]:
    """Every organisation's routing tree, by organisation id (only those with routes)."""
    by_org: dict[int, list[Route]] = defaultdict(list)
    for route in Route.objects.all():
        by_org[route.organization_id].append(route)
    return {org_id: Tree(routes) for org_id, routes in by_org.items()}


EMPTY = Tree([])
