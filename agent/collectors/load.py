"""Load averages."""

from __future__ import annotations

import psutil

from agent.collectors.base import Collector, SeriesList
from shared.wire import series_dict


class LoadCollector(Collector):
    name = "load"
    description = "Run-queue load averages over 1, 5 and 15 minutes."
    fields = {
        "system_load1": "gauge, runnable+waiting tasks averaged over 1 minute",
        "system_load5": "gauge, same over 5 minutes",
        "system_load15": "gauge, same over 15 minutes",
    }

    def collect(self, now: float) -> SeriesList:
        one, five, fifteen = psutil.getloadavg()
        return [
            series_dict("system_load1", [[now, float(one)]]),
            series_dict("system_load5", [[now, float(five)]]),
            series_dict("system_load15", [[now, float(fifteen)]]),
        ]
