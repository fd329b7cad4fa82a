"""``fleetwatch-agent``: run the host agent (see docs/agent.md)."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from types import FrameType

from agent import __version__
from agent.collectors import REGISTRY
from agent.components import attach_health, build_components
from agent.config import CREDENTIAL_FILE, AgentConfig, ConfigError, load_config, save_credential
from agent.runner import Component, MetricsAgent
from shared import wire_v2

log = logging.getLogger("agent")

EXIT_CONFIG = 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="fleetwatch-agent", description="fleetwatch host agent")
    parser.add_argument(
        "--config", help="TOML config file (default: $FLEETWATCH_AGENT_CONFIG or /etc/fleetwatch/agent.toml)"
    )
    parser.add_argument(
        "--once", action="store_true", help="collect one batch, send it (or print it) and exit"
    )
    parser.add_argument(
        "--print",
        action="store_true",
        dest="print_batch",
        help="with --once: print the batch as JSON, do not send",
    )
    parser.add_argument("--interval", help="seconds between batches (overrides the config)")
    parser.add_argument(
        "--list-collectors", action="store_true", help="print the collectors and their metrics"
    )
    parser.add_argument(
        "--save-credential",
        metavar="CREDENTIAL",
        help="store the enrollment credential (from fleetwatch-manage enroll-agent) in the state directory and exit",
    )
    parser.add_argument("--version", action="version", version=f"fleetwatch-agent {__version__}")
    args = parser.parse_args(argv)
    if args.print_batch and not args.once:
        parser.error("--print needs --once")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list_collectors:
        return list_collectors()
    try:
        overrides = {"interval": args.interval, "credential": args.save_credential}
        config = load_config(args.config, overrides=overrides, available_collectors=list(REGISTRY))
    except ConfigError as exc:
        print(f"fleetwatch-agent: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(config.log_level)
    if args.save_credential:
        path = save_credential(config.state_dir, config.credential)
        print(f"credential {config.credential.key_id} saved to {path}")
        return 0
    if config.credential is None:
        log.warning(
            "no enrollment credential (FLEETWATCH_AGENT_CREDENTIAL, _CREDENTIAL_FILE or %s): batches are "
            "unsigned, and workers with FLEETWATCH_REQUIRE_SIGNED_BATCHES=true refuse them",
            config.state_dir / CREDENTIAL_FILE,
        )
    if args.once:
        return run_once(config, print_batch=args.print_batch)
    agent = MetricsAgent(config)
    try:
        components = build_components(config, agent.transport)
    except ConfigError as exc:
        agent.close()
        print(f"fleetwatch-agent: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    attach_health(agent, components)
    try:
        return run_forever(agent, components)
    except ConfigError as exc:  # a component that cannot start (socket path taken, ...)
        print(f"fleetwatch-agent: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )


def list_collectors() -> int:
    for name, cls in REGISTRY.items():
        print(f"{name}: {cls.description}")
        for metric, meaning in cls.fields.items():
            print(f"    {metric}: {meaning}")
    return 0


def run_once(config: AgentConfig, print_batch: bool) -> int:
    agent = MetricsAgent(config, dry_run=print_batch)
    try:
        if print_batch:
            batch = agent.build_batch()
            json.dump(wire_v2.readable(batch), sys.stdout, indent=2)
            sys.stdout.write("\n")
            return 0
        return 0 if agent.run_once() else 1
    finally:
        agent.close()


def run_forever(agent: MetricsAgent, components: list[Component]) -> int:
    config = agent.config
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info(
        "agent %s (host %s) sending every %gs to %s; state in %s",
        config.agent_id,
        config.host,
        config.interval,
        agent.transport.stream_key,
        config.state_dir,
    )
    started: list[Component] = []
    try:
        for component in components:  # additional shippers (logs, ...) run beside the metrics loop
            component.start()
            started.append(component)
        agent.run(stop)
    finally:
        for component in reversed(started):
            try:
                component.stop()
            except Exception:
                log.exception("component %r did not stop cleanly", component)
        agent.close()
    log.info("stopped")
    return 0
