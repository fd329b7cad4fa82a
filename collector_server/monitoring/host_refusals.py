"""What the workers refused from each host over its limits, for /metrics, the hosts API and the admin.

Read from Redis (shared.host_limits) with the short-timeout probe client: a Redis that
cannot be read leaves the figures out (None), never fails the page.
"""

from __future__ import annotations

import logging

import redis

from collector_server.monitoring import health
from shared import host_limits

log = logging.getLogger(__name__)


def for_hosts(agent_ids: list[str]) -> dict[str, host_limits.HostRefusals] | None:
    """Return the refusals of those of `agent_ids` that have any; None if Redis cannot be read."""
    if not agent_ids:
        return {}
    try:
        return host_limits.read_many(health.health_redis(), agent_ids)
    except redis.RedisError as exc:
        log.warning("cannot read the per-host limit counters: %s", exc)
        return None


def counts_for(agent_id: str) -> dict[str, int] | None:
    found = for_hosts([agent_id])
    if found is None:
        return None
    refusals = found.get(agent_id)
    return dict(refusals.counts) if refusals else {}
