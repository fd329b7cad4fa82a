"""LogShipper: what the agent's main loop starts to ship application logs and metrics.

    shipper = LogShipper(LogShipConfig.from_dict(cfg["logs"], state_dir), AgentInfo(id, host, version),
                         send_logs=transport_for("logs").send, send_metrics=transport_for("metrics").send)
    shipper.start()   # local endpoint + file tailing in background threads
    ...
    shipper.stop()    # last poll and flush; positions are saved

Application metrics are sent in metrics batches whose agent id is ``<agent id>/apps`` with
their own epochs, so their (agent id, epoch, seq) can never collide with the agent's own
metrics batches; the host (from ``agent.host``) is the agent's.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any

from agent.logs.batcher import StreamBatcher
from agent.logs.config import AgentInfo, LogShipConfig
from agent.logs.endpoint import LocalEndpoint
from agent.logs.sending import Sender
from agent.logs.state import PositionStore
from agent.logs.tailer import FileTailer

log = logging.getLogger(__name__)
APPS_AGENT_SUFFIX = "/apps"
SWITCH_INTERVAL = 0.0005  # seconds; see LogShipper.start


class LogShipper:
    """Run the local endpoint and the file tailer; send their output through the transport."""

    def __init__(
        self, config: LogShipConfig, agent: AgentInfo, send_logs: Sender, send_metrics: Sender | None = None
    ) -> None:
        self.config = config
        self.agent = agent
        self.store = PositionStore(config.state_dir)
        self.logs = StreamBatcher(
            "logs",
            agent,
            send_logs,
            self.store.new_epoch(),
            config.max_batch_records,
            config.max_buffer_records,
        )
        apps = AgentInfo(agent.agent_id + APPS_AGENT_SUFFIX, agent.host, agent.version)
        self.metrics = (
            StreamBatcher(
                "metrics", apps, send_metrics, self.store.new_epoch(), 2000, config.max_buffer_records
            )
            if send_metrics is not None
            else None
        )
        self.endpoint = (
            LocalEndpoint(config.socket_path, self.logs.add_one, self._on_series, config.socket_mode)
            if config.socket_enabled
            else None
        )
        self.tailer = FileTailer(config, agent, send_logs, self.store)
        self.series_dropped = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _on_series(self, series: list[dict[str, Any]]) -> None:
        if self.metrics is None:
            self.series_dropped += len(series)
        else:
            self.metrics.add(series)

    def start(self) -> None:
        if self.endpoint is not None:
            # The endpoint's receiving thread must get the GIL back quickly: the kernel queues
            # only ~10 datagrams (net.unix.max_dgram_qlen) before senders get EAGAIN. The
            # default switch interval (5 ms) lets another thread hold it for that long.
            if sys.getswitchinterval() > SWITCH_INTERVAL:
                sys.setswitchinterval(SWITCH_INTERVAL)
            self.endpoint.start()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="fleetwatch-log-shipper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop receiving, then poll and flush once more so nothing accepted is left behind."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.endpoint is not None:
            self.endpoint.stop()
        self.run_once()
        self.tailer.close()

    def run_once(self) -> None:
        """Poll the files and flush the buffers once (the background loop calls this)."""
        try:
            self.tailer.poll()
        except Exception:  # one bad poll must not stop log shipping
            log.exception("log file poll failed")
        self.logs.flush()
        if self.metrics is not None:
            self.metrics.flush()

    def _run(self) -> None:
        next_flush = time.monotonic() + self.config.flush_interval
        while not self._stop.wait(self.config.poll_interval):
            try:
                self.tailer.poll()
            except Exception:
                log.exception("log file poll failed")
            if time.monotonic() >= next_flush:
                next_flush = time.monotonic() + self.config.flush_interval
                self.logs.flush()
                if self.metrics is not None:
                    self.metrics.flush()

    def health_series(self, ts: float | None = None) -> list[dict[str, Any]]:
        """Return the shipping counters as metric series for the agent's own metrics batch.

        Everything that loses or changes data is here: rejected messages and lines, records
        dropped from a full buffer, lines cut to max_record_bytes, invalid UTF-8 replaced.
        """
        now = time.time() if ts is None else ts
        files = self.tailer.stats()
        endpoint = self.endpoint.stats() if self.endpoint is not None else {}
        metrics = self.metrics.stats() if self.metrics is not None else {}
        counters = [
            ("agent_logs_records_total", {"source": "socket"}, self.logs.counters["items_sent"]),
            ("agent_logs_records_total", {"source": "files"}, files["records_shipped"]),
            ("agent_logs_rejected_total", {"source": "socket"}, endpoint.get("rejected", 0)),
            ("agent_logs_rejected_total", {"source": "files"}, files["lines_rejected"]),
            (
                "agent_logs_dropped_total",
                {"source": "socket"},
                self.logs.counters["dropped"] + endpoint.get("overflow", 0),
            ),
            (
                "agent_logs_dropped_total",
                {"source": "app_metrics"},
                metrics.get("dropped", 0) + self.series_dropped,
            ),
            ("agent_logs_truncated_total", {}, files["lines_truncated"]),
            ("agent_logs_invalid_utf8_total", {}, files["lines_invalid_utf8"]),
            ("agent_logs_file_truncations_total", {}, files["file_truncations"]),
            (
                "agent_logs_send_errors_total",
                {},
                files["send_errors"] + self.logs.counters["send_errors"] + metrics.get("send_errors", 0),
            ),
        ]
        out = [
            {"name": name, "type": "counter", "labels": labels, "points": [[now, float(value)]]}
            for name, labels, value in counters
        ]
        out.append(
            {
                "name": "agent_logs_files_tracked",
                "type": "gauge",
                "labels": {},
                "points": [[now, float(files["files_tracked"])]],
            }
        )
        return out

    def stats(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint.stats() if self.endpoint is not None else {},
            "files": self.tailer.stats(),
            "logs": self.logs.stats(),
            "metrics": self.metrics.stats() if self.metrics is not None else {},
            "series_dropped": self.series_dropped,
        }
