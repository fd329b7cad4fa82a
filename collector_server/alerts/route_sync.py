"""Rules' channel lists and default channels, expressed as generated routes of the routing tree.

Once a root route exists, dispatch follows the tree only, so what a rule's ``channels`` and a
channel's ``is_default`` used to mean is kept as generated child routes of the root, after the
operator's own routes:

- per rule with channels, one route per channel matching ``alertname="<rule name>"`` (every one
  but the last with ``continue``), so the rule's alerts stop there;
- per default channel, a catch-all route with ``continue``: it gets what no rule route took
  (rules without channels, manual alerts), as before.

Generated routes copy their channel's grouping and timers and are rebuilt whenever a rule, a
channel or the root changes (signals in apps.py), so editing a rule's channels keeps working.
"""

from __future__ import annotations

from collector_server.alerts.models import AlertRule, Channel, Route

GENERATED_POSITION = 10_000  # after the operator's own routes


def tree_is_on(org_id: int | None = None) -> bool:
    """Whether a root route exists (in ``org_id``; None: in any organisation in scope)."""
    roots = Route._base_manager.filter(parent__isnull=True)
    if org_id is not None:
        roots = roots.filter(organization_id=org_id)
    return roots.exists()


def _channel_settings(channel: Channel) -> dict:
    return {
        "channel": channel,
        "group_by": channel.group_by or ["alertname"],
        "group_wait_seconds": channel.group_wait_seconds,
        "group_interval_seconds": channel.group_interval_seconds,
        "repeat_interval_seconds": channel.repeat_interval_seconds,
    }


def rebuild(root: Route | None = None) -> int:
    """Replace the generated routes under the root (every organisation's root when None).

    Return how many generated routes there are now.
    """
    if root is None:
        return sum(rebuild_tree(r) for r in Route._base_manager.filter(parent__isnull=True))
    return rebuild_tree(root)


def rebuild_tree(root: Route) -> int:
    """Replace the generated routes under one organisation's root, from that organisation's rules."""
    org_id = root.organization_id
    Route._base_manager.filter(generated=True, organization_id=org_id).delete()
    position = GENERATED_POSITION
    made = []
    rules = AlertRule._base_manager.filter(organization_id=org_id).prefetch_related("channels")
    for rule in rules.order_by("name"):
        channels = sorted(rule.channels.all(), key=lambda c: c.name)
        for index, channel in enumerate(channels):
            made.append(
                Route(
                    parent=root,
                    organization_id=org_id,
                    position=position,
                    name=f"rule {rule.name} → {channel.name}",
                    matchers=[{"name": "alertname", "op": "=", "value": rule.name}],
                    continue_matching=index < len(channels) - 1,
                    rule=rule,
                    generated=True,
                    **_channel_settings(channel),
                )
            )
            position += 1
    for channel in Channel._base_manager.filter(is_default=True, organization_id=org_id).order_by("name"):
        made.append(
            Route(
                parent=root,
                organization_id=org_id,
                position=position,
                name=f"default channel {channel.name}",
                continue_matching=True,
                generated=True,
                **_channel_settings(channel),
            )
        )
        position += 1
    Route._base_manager.bulk_create(made)
    return len(made)
