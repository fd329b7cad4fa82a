"""Per-host ingest limits, checked by the worker (see README "Per-host limits").

What exceeds a limit is refused alone (the series, the log record; the batch only for
its size), noted on its batch (`Batch.refuse`), counted per host and reason in Redis
(shared.host_limits) and logged once per host per LIMIT_LOG_INTERVAL_SECONDS.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from shared import host_limits
from shared.wire import Batch

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits in force; 0 turns one off."""

    new_series_per_hour: int = 0
    series_per_host: int = 0
    labels_per_series: int = 0
    label_name_length: int = 0
    label_value_length: int = 0
    log_attrs_bytes: int = 0
    batch_bytes: int = 0

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(
            new_series_per_hour=settings.LIMIT_NEW_SERIES_PER_HOST_PER_HOUR,
            series_per_host=settings.LIMIT_SERIES_PER_HOST,
            labels_per_series=settings.LIMIT_LABELS_PER_SERIES,
            label_name_length=settings.LIMIT_LABEL_NAME_LENGTH,
            label_value_length=settings.LIMIT_LABEL_VALUE_LENGTH,
            log_attrs_bytes=settings.LIMIT_LOG_ATTRS_BYTES,
            batch_bytes=settings.LIMIT_BATCH_BYTES,
        )

    def label_problem(self, labels: dict[str, str]) -> str | None:
        """Return the limit a series' labels exceed (a reason of shared.host_limits), or None."""
        if self.labels_per_series and len(labels) > self.labels_per_series:
            return host_limits.LABELS_PER_SERIES
        for name, value in labels.items():
            if self.label_name_length and len(name) > self.label_name_length:
                return host_limits.LABEL_NAME_LENGTH
            if self.label_value_length and len(value) > self.label_value_length:
                return host_limits.LABEL_VALUE_LENGTH
        return None

    def series_budget(self, total: int, last_hour: int) -> int | None:
        """How many new series a host with `total` series (`last_hour` of them new) may still create.

        None: no limit applies.
        """
        budgets = []
        if self.series_per_host:
            budgets.append(self.series_per_host - total)
        if self.new_series_per_hour:
            budgets.append(self.new_series_per_hour - last_hour)
        return max(0, min(budgets)) if budgets else None

    def budget_reason(self, total: int, last_hour: int) -> str:
        """The limit that ran out first for a host in this state."""
        if self.series_per_host and total >= self.series_per_host:
            return host_limits.SERIES_PER_HOST
        return host_limits.NEW_SERIES_PER_HOUR


def host_agent_id(agent_id: str) -> str:
    """The host's agent id: a '/component' suffix (e.g. '<id>/apps') marks another sequence of the same agent."""
    return agent_id.partition("/")[0]


def refusals_of(batches: list[Batch]) -> host_limits.Refusals:
    """Group what the handler refused in `batches` by host."""
    out: host_limits.Refusals = {}
    for batch in batches:
        if batch.refused:
            out.setdefault((host_agent_id(batch.agent_id), batch.host), Counter()).update(batch.refused)
    return out


class RefusalLog:
    """Log refusals at WARNING, at most one line per host per interval (with what was held back)."""

    def __init__(self, interval: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._last: dict[str, float] = {}
        self._held: dict[str, Counter[str]] = {}
        self._lock = threading.Lock()

    def note(self, refusals: host_limits.Refusals) -> int:
        """Note refusals; return how many lines were logged."""
        interval = settings.LIMIT_LOG_INTERVAL_SECONDS if self.interval is None else self.interval
        logged = 0
        now = self.clock()
        for (agent_id, hostname), counts in refusals.items():
            with self._lock:
                held = self._held.setdefault(agent_id, Counter())
                held.update(counts)
                last = self._last.get(agent_id)
                if last is not None and now - last < interval:
                    continue
                self._last[agent_id] = now
                report = dict(self._held.pop(agent_id))
            detail = ", ".join(f"{reason}: {count}" for reason, count in sorted(report.items()))
            log.warning(
                "host %s (agent %s) is over its ingest limits; refused since the last report: %s",
                hostname,
                agent_id,
                detail,
                extra={"limit_host": hostname, "limit_agent_id": agent_id, "refused": report},
            )
            logged += 1
        return logged


refusal_log = RefusalLog()
