"""The collector interface and the loop guard that keeps one failing collector from stopping the others."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from agent.collectors.hostpaths import DEFAULT_PATHS, HostPaths
from agent.collectors.options import DEFAULT_OPTIONS, CollectorOptions

log = logging.getLogger("agent.collectors")

SeriesList = list[dict[str, Any]]


class Collector:
    """One group of host metrics.

    ``fields`` maps each metric name to its type, unit and meaning, for the docs and
    ``--list-collectors``. ``collect(now)`` returns wire series (``shared.wire.series_dict``)
    stamped with ``now``; it may raise, and ``CollectorSet`` deals with that. Files of the
    host's procfs are read under ``paths.procfs`` (``paths.proc("meminfo")``); ``options`` holds the
    few settings some collectors take (top-N size, how often the costly walks run).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    fields: ClassVar[dict[str, str]] = {}

    def __init__(self, paths: HostPaths = DEFAULT_PATHS, options: CollectorOptions = DEFAULT_OPTIONS) -> None:
        self.paths = paths
        self.options = options

    def collect(self, now: float) -> SeriesList:
        raise NotImplementedError

    def close(self) -> None:
        """Release whatever the collector holds (the GPU library handle, ...)."""


class CollectorSet:
    """Run collectors in turn; a failing one is logged once per failure streak and skipped."""

    def __init__(self, collectors: list[Collector]) -> None:
        self.collectors = collectors
        self.failing: set[str] = set()
        self.errors_total: dict[str, int] = {collector.name: 0 for collector in collectors}

    def collect(self, now: float) -> SeriesList:
        series: SeriesList = []
        for collector in self.collectors:
            try:
                series.extend(collector.collect(now))
            except Exception as exc:
                self._failed(collector, exc)
            else:
                self._succeeded(collector)
        return series

    def _failed(self, collector: Collector, exc: Exception) -> None:
        self.errors_total[collector.name] += 1
        if collector.name not in self.failing:
            self.failing.add(collector.name)
            log.warning(
                "collector %s failed: %s: %s (logged once; other collectors go on)",
                collector.name,
                exc.__class__.__name__,
                exc,
            )

    def _succeeded(self, collector: Collector) -> None:
        if collector.name in self.failing:
            self.failing.discard(collector.name)
            log.info("collector %s works again", collector.name)

    def close(self) -> None:
        for collector in self.collectors:
            try:
                collector.close()
            except Exception as exc:  # closing must never stop shutdown
                log.debug("collector %s did not close cleanly: %s", collector.name, exc)
