"""The metrics loop: collect, add self-metrics, encode one batch, send, sleep until the next slot."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from agent import __version__
from agent.collectors import CollectorSet, build_collectors
from agent.config import AgentConfig
from agent.sequence import SequenceFile
from agent.spool import Spool
from agent.transport import Transport
from shared import streams
from shared.wire import COUNTER, encode_batch, series_dict
from shared.wire_v2 import Encoder

log = logging.getLogger("agent")

FLUSH_ON_STOP_SECONDS = 5.0


class Component(Protocol):
    """A background part of the agent (the log shipper, ...) started and stopped with it.

    A component may also offer ``health_series(ts) -> list[series]``: its own counters, added
    to every metrics batch of the agent (see ``MetricsAgent.health_sources``).
    """

    def start(self) -> None: ...

    def stop(self) -> None: ...


HealthSource = Callable[[float], list[dict[str, Any]]]


def spool_dir(state_dir: Path, kind: str) -> Path:
    return state_dir / "spool" / kind


def sequence_path(state_dir: Path, kind: str) -> Path:
    return state_dir / f"sequence-{kind}.json"


class MetricsAgent:
    """Owns the collectors, the metrics sequence and the metrics transport."""

    def __init__(
        self, config: AgentConfig, collectors: CollectorSet | None = None, dry_run: bool = False
    ) -> None:
        self.config = config
        self.dry_run = dry_run
        if collectors is None:
            collectors = build_collectors(config.collectors, config.host_paths, config.collector_options)
        self.collectors = collectors
        # Components' own health series (log shipping counters, ...), added to every batch.
        self.health_sources: list[HealthSource] = []
        self._failing_sources: set[int] = set()
        self.sequence = SequenceFile(sequence_path(config.state_dir, streams.METRICS), read_only=dry_run)
        spool = Spool(spool_dir(config.state_dir, streams.METRICS), config.spool_cap_bytes)
        stream = streams.producer_key(
            streams.METRICS, config.agent_id, config.stream_shards, config.stream_prefix
        )
        self.transport = Transport(
            config.redis_url, stream, spool, credential=config.credential, cluster=config.redis_cluster
        )
        self.last_collection_seconds = 0.0
        self.encoder = Encoder()  # version 2: keeps the catalog's bytes while the series stay the same

    def build_batch(self, now: float | None = None) -> bytes:
        """Collect every metric group and return one encoded metrics batch."""
        now = time.time() if now is None else now
        started = time.perf_counter()
        series = self.collectors.collect(now)
        self.last_collection_seconds = time.perf_counter() - started
        series += self.self_metrics(now)
        if self.config.wire_version == 2:
            return self.encoder.encode(
                agent_id=self.config.agent_id,
                host=self.config.host,
                agent_version=__version__,
                epoch=self.sequence.epoch,
                seq=self.sequence.take(),
                sent_at=time.time(),
                series=series,
                host_labels=self.config.labels,
            )
        return encode_batch(
            kind=streams.METRICS,
            agent_id=self.config.agent_id,
            host=self.config.host,
            agent_version=__version__,
            epoch=self.sequence.epoch,
            seq=self.sequence.take(),
            sent_at=time.time(),
            series=series,
            host_labels=self.config.labels,
        )

    def self_metrics(self, now: float) -> list[dict[str, Any]]:
        """Return the agent's own health series (values as of before this batch is sent)."""
        transport, spool = self.transport, self.transport.spool

        def point(value: float) -> list[list[float]]:
            return [[now, float(value)]]

        series = [
            series_dict("agent_spool_bytes", point(spool.pending_bytes)),
            series_dict("agent_spool_batches", point(spool.pending_batches)),
            series_dict("agent_spool_dropped_batches_total", point(spool.dropped_batches), type=COUNTER),
            series_dict("agent_send_errors_total", point(transport.send_errors_total), type=COUNTER),
            series_dict("agent_collection_seconds", point(self.last_collection_seconds)),
            series_dict("agent_batches_sent_total", point(transport.batches_sent_total), type=COUNTER),
        ]
        for name, errors in self.collectors.errors_total.items():
            series.append(
                series_dict("agent_collector_errors_total", point(errors), {"collector": name}, COUNTER)
            )
        return series + self._component_health(now)

    def _component_health(self, now: float) -> list[dict[str, Any]]:
        """Return the series of every health source; a failing one is logged once and left out."""
        series: list[dict[str, Any]] = []
        for index, source in enumerate(self.health_sources):
            try:
                series += source(now)
            except Exception:
                if index not in self._failing_sources:
                    self._failing_sources.add(index)
                    log.exception("health series of %r failed; left out of the batch", source)
            else:
                self._failing_sources.discard(index)
        return series

    def run_once(self) -> bool:
        """Collect and send one batch; return True if it reached Redis now."""
        return self.transport.send(self.build_batch())

    def run(self, stop: threading.Event) -> None:
        """Send a batch every interval (slots kept on a fixed grid) until ``stop`` is set."""
        interval = self.config.interval
        next_at = time.monotonic()
        failing = False
        while not stop.is_set():
            try:
                self.run_once()
                failing = False
            except Exception:  # a bug or a full disk must not end monitoring; say it once per streak
                if not failing:
                    log.exception("cycle failed; the agent goes on and logs this once until a cycle works")
                failing = True
            next_at += interval
            behind = time.monotonic() - next_at
            if behind > 0:  # a slow cycle: skip the slots already missed instead of bursting
                next_at += interval * (int(behind // interval) + 1)
            stop.wait(max(0.0, next_at - time.monotonic()))

    def close(self) -> None:
        """Flush what can be flushed, record the exact sequence and release resources."""
        if self.dry_run:
            pass
        elif not self.transport.flush(FLUSH_ON_STOP_SECONDS):
            log.info("%d batches stay in the spool for the next start", self.transport.spool.pending_batches)
        self.sequence.save()
        self.collectors.close()
        self.transport.close()
