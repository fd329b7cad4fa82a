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


def tree_is_on() -> bool:
    return Route.objects.filter(parent__isnull=True).exists()


def _channel_settings(channel: Channel) -> dict:
    return {
        "channel": channel,
        "group_by": channel.group_by or ["alertname"],
        "group_wait_seconds": channel.group_wait_seconds,
        "group_interval_seconds": channel.group_interval_seconds,
        "repeat_interval_seconds": channel.repeat_interval_seconds,
    }


def rebuild(root: Route | None = None) -> int:
    """Replace the generated routes under the root; return how many there are now."""
    root = root or Route.objects.filter(parent__isnull=True).first()
    if root is None:
        return 0
    Route.objects.filter(generated=True).delete()
    position = GENERATED_POSITION
    made = []
    for rule in AlertRule.objects.prefetch_related("channels").order_by("name"):
        channels = sorted(rule.channels.all(), key=lambda c: c.name)
        for index, channel in enumerate(channels):
            made.append(
                Route(
                    parent=root,
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
    for channel in Channel.objects.filter(is_default=True).order_by("name"):
        made.append(
            Route(
                parent=root,
                position=position,
                name=f"default channel {channel.name}",
                continue_matching=True,
                generated=True,
                **_channel_settings(channel),
            )
        )
        position += 1
    Route.objects.bulk_create(made)
    return len(made)
