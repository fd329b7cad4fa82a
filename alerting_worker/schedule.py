"""Periodic work run by RQ's cron scheduler (`fleetwatch-scheduler`).

Each entry names a job function by dotted path, the queue it runs on and its interval
in seconds (or a cron expression). Components add their entries here.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.config import envint


@dataclass(frozen=True)
class Periodic:
    func: str
    queue: str
    interval: int | None = None
    cron: str | None = None
    timeout: int = 300


SCHEDULE: list[Periodic] = [
    # Ingest: a drain job per stream every second; each drains until the stream is empty.
    Periodic("alerting_worker.ingest.jobs.drain_metrics", "ingest", interval=1, timeout=120),
    Periodic("alerting_worker.ingest.jobs.drain_logs", "ingest", interval=1, timeout=120),
    # Maintenance
    Periodic("alerting_worker.maintenance.rollups.run_rollups", "maintenance", interval=60),
    Periodic("alerting_worker.maintenance.upkeep.create_partitions", "maintenance", interval=3600),
    Periodic("alerting_worker.maintenance.upkeep.enforce_retention", "maintenance", interval=3600),
    Periodic("alerting_worker.maintenance.upkeep.trim_streams", "maintenance", interval=30),
    # Logs: the trigram index of each closed hour and day (collector_server/logs/deferred_index.py).
    Periodic("collector_server.logs.deferred_index.build_closed", "maintenance", interval=120, timeout=1800),
    # Alerting and logs entries follow.
    # Alerting: evaluate every enabled rule then dispatch (ALERT_CHECK_INTERVAL, default 15 s);
    # advance group timers in between; hand out outbox rows whose worker died.
    Periodic(
        "alerting_worker.alerting.jobs.evaluate_and_dispatch",
        "alerts",
        interval=envint("ALERT_CHECK_INTERVAL", 15, minimum=1),
        timeout=120,
    ),
    Periodic("alerting_worker.alerting.jobs.dispatch_only", "alerts", interval=5, timeout=60),
    Periodic("alerting_worker.alerting.jobs.sweep_outbox", "notifications", interval=30, timeout=60),
    # UI: the fleet page's default sparklines of the organisations being looked at, kept computed.
    Periodic("collector_server.ui.fleet.refresh_default_sparklines", "alerts", interval=5, timeout=60),
]
