"""Background components started next to the metrics loop.

HOOK FOR ADDITIONAL SHIPPERS: anything that runs beside the metrics loop is built in
``build_components``. A component has ``start()`` (returns promptly; work happens in its
own thread) and ``stop()`` (flushes, then returns); they are stopped in reverse order
before the metrics transport is flushed. It may offer ``health_series(ts)``, whose series
are added to every metrics batch (``attach_health``). Read settings from
``config.document`` (your own TOML table) and raise ``shared.config.ConfigError`` for bad
values (exit code 2).

The log shipper (``agent/logs``) always starts, because its local socket endpoint is on by
default (``[logs] socket_enabled = false`` switches it off; with no files to tail either,
nothing starts). It gets its own ``Transport`` on the logs stream (spool under
``<state_dir>/spool/logs``) and shares the metrics transport for application metrics,
which is thread-safe.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from agent import __version__
from agent.config import AgentConfig
from agent.runner import Component, MetricsAgent, spool_dir
from agent.scrape.config import scrape_targets
from agent.spool import Spool
from agent.transport import Transport
from shared import streams
from shared.config import ConfigError

log = logging.getLogger("agent")

FLUSH_ON_STOP_SECONDS = 5.0


class LogShipping:
    """The log shipper plus the logs-stream transport it sends through."""

    def __init__(self, config: AgentConfig, metrics_transport: Transport, ship_config: Any) -> None:
        from agent.logs.config import AgentInfo
        from agent.logs.shipper import LogShipper

        stream = streams.producer_key(
            streams.LOGS, config.agent_id, config.stream_shards, config.stream_prefix
        )
        spool = Spool(spool_dir(config.state_dir, streams.LOGS), config.spool_cap_bytes)
        self.transport = Transport(
            config.redis_url, stream, spool, credential=config.credential, cluster=config.redis_cluster
        )
        info = AgentInfo(config.agent_id, config.host, __version__)
        self.shipper = LogShipper(ship_config, info, self.transport.send, metrics_transport.send)

    def start(self) -> None:
        self.shipper.start()

    def health_series(self, ts: float) -> list[dict[str, Any]]:
        """Return the log shipping counters (``agent_logs_*``) for the agent's metrics batch."""
        return self.shipper.health_series(ts)

    def stop(self) -> None:
        try:
            self.shipper.stop()
        finally:
            if not self.transport.flush(FLUSH_ON_STOP_SECONDS):
                log.info(
                    "%d log batches stay in the spool for the next start",
                    self.transport.spool.pending_batches,
                )
            self.transport.close()


def log_ship_config(config: AgentConfig, env: Mapping[str, str] | None = None) -> Any:
    """Return the validated ``[logs]`` settings (defaults when the table is absent)."""
    from agent.logs.config import LogShipConfig
    from agent.logs.socket_path import socket_path_is_explicit, usable_socket_path

    env = os.environ if env is None else env
    table = config.document.get("logs", {})
    if not isinstance(table, dict):
        raise ConfigError("[logs] in the config file must be a table")
    ship_config = LogShipConfig.from_dict(table, str(config.state_dir))
    if ship_config.socket_enabled:
        explicit = socket_path_is_explicit(table, env)
        ship_config.socket_path = usable_socket_path(ship_config.socket_path, explicit, config.state_dir)
        ship_config.validate()  # the fallback path must fit a Unix socket address too
    return ship_config


def build_components(config: AgentConfig, metrics_transport: Transport) -> list[Component]:
    """Return the extra components to start with the agent."""
    components: list[Component] = []
    ship_config = log_ship_config(config)
    if ship_config.socket_enabled or ship_config.files:
        components.append(LogShipping(config, metrics_transport, ship_config))
    targets = scrape_targets(config.document)
    if targets:
        # imported only when there is something to scrape: prometheus_client and the HTTP stack
        # are 4 MB of the agent's RSS (bench/agent_cost.py)
        from agent.scrape.scraper import Scraper

        components.append(Scraper(targets, config.agent_id, config.host, metrics_transport.send))
    # --- register further shippers here ---
    return components


def attach_health(agent: MetricsAgent, components: list[Component]) -> None:
    """Add the health series of every component that offers them to the agent's batches."""
    for component in components:
        source = getattr(component, "health_series", None)
        if callable(source):
            agent.health_sources.append(source)
