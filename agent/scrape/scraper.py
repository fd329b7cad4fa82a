"""The scrape component: one thread per target, one metrics batch per scrape.

Batches go through the agent's metrics transport (spooled while Redis is down) under
the agent id `<agent id>/scrape`, a component sequence of the same host: a fresh epoch
per agent run, seq counting up. Every target is counted (up, last duration, samples of
the last scrape, errors) in the agent's own batches.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent import __version__
from agent.scrape import presets
from agent.scrape.config import ScrapeTarget
from agent.scrape.exposition import to_series
from shared.wire import COUNTER, GAUGE, encode_batch

log = logging.getLogger("agent.scrape")

ACCEPT = "text/plain;version=0.0.4;q=1,*/*;q=0.1"
MAX_BODY_BYTES = 32 * 1024 * 1024


@dataclass
class TargetState:
    up: float = 0.0
    duration: float = 0.0
    samples: int = 0
    skipped: int = 0
    errors: int = 0
    scrapes: int = 0


class Scraper:
    """Scrape every target on its own interval and send the samples as metrics batches."""

    def __init__(
        self, targets: list[ScrapeTarget], agent_id: str, host: str, send: Callable[[bytes], bool]
    ) -> None:
        self.targets = targets
        self.agent_id = f"{agent_id}/scrape"
        self.host = host
        self.send = send
        self.epoch = int(time.time() * 1000)
        self._seq = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.state = {t.name: TargetState() for t in targets}

    def start(self) -> None:
        for target in self.targets:
            thread = threading.Thread(
                target=self._loop, args=(target,), name=f"scrape-{target.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)

    def _loop(self, target: ScrapeTarget) -> None:
        next_due = time.monotonic()
        while not self._stop.is_set():
            self.scrape(target)
            next_due += target.interval
            self._stop.wait(max(0.0, next_due - time.monotonic()))

    def scrape(self, target: ScrapeTarget) -> bool:
        """Scrape one target once and send its samples; return whether it was up."""
        state = self.state[target.name]
        started = time.monotonic()
        now = time.time()
        try:
            text = fetch(target)
            series, skipped = to_series(text, target, now)
            if target.preset:
                own = {**target.labels, "job": target.name, "instance": target.instance}
                series = presets.apply(target.preset, series, own, target.model, now, target.keep_original)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            state.up, state.errors = 0.0, state.errors + 1
            state.duration = time.monotonic() - started
            log.warning("scrape of %s (%s) failed: %s", target.name, target.url, exc)
            return False
        state.up, state.samples, state.skipped = 1.0, len(series), state.skipped + skipped
        state.duration = time.monotonic() - started
        state.scrapes += 1
        if series:
            self.send(self._batch(series, now))
        return True

    def _batch(self, series: list[dict[str, Any]], now: float) -> bytes:
        with self._lock:
            seq = self._seq
            self._seq += 1
        return encode_batch(
            kind="metrics",
            agent_id=self.agent_id,
            host=self.host,
            agent_version=__version__,
            epoch=self.epoch,
            seq=seq,
            sent_at=now,
            series=series,
        )

    def health_series(self, ts: float) -> list[dict[str, Any]]:
        """Per-target counters added to the agent's own batches."""
        out = []
        for target in self.targets:
            state = self.state[target.name]
            labels = {"target": target.name, "instance": target.instance}
            for name, kind, value in (
                ("agent_scrape_up", GAUGE, state.up),
                ("agent_scrape_duration_seconds", GAUGE, state.duration),
                ("agent_scrape_samples", GAUGE, float(state.samples)),
                ("agent_scrape_samples_skipped_total", COUNTER, float(state.skipped)),
                ("agent_scrape_errors_total", COUNTER, float(state.errors)),
            ):
                out.append({"name": name, "type": kind, "labels": labels, "points": [[ts, value]]})
        return out


def fetch(target: ScrapeTarget) -> str:
    """GET the target's exposition; raise OSError on HTTP errors and timeouts."""
    request = urllib.request.Request(target.url, headers={"Accept": ACCEPT, "User-Agent": "fleetwatch-agent"})
    try:
        with urllib.request.urlopen(request, timeout=target.timeout) as response:
            body = response.read(MAX_BODY_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise OSError(f"HTTP {exc.code} {exc.reason}") from None
    if len(body) > MAX_BODY_BYTES:
        raise OSError(f"exposition larger than {MAX_BODY_BYTES} bytes")
    return body.decode("utf-8")
