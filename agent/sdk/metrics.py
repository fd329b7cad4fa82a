"""Per-endpoint API metrics kept as cumulative counters and flushed to the agent periodically.

Names (docs/contracts.md): http_requests_total{route,method,status},
http_request_errors_total{route,method} (5xx), http_request_duration_seconds_bucket{route,method,le},
http_request_duration_seconds_sum / _count{route,method}, http_request_size_bytes_sum{route,method},
http_response_size_bytes_sum{route,method}; every series also has the labels ``service`` and
``instance``: a short random id of the ApiMetrics (one per process), so that the processes of one
app on one host (gunicorn workers) each write their own cumulative series instead of interleaving
their counters in one (which the server would read as counter resets). The server sums over it.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from bisect import bisect_left
from typing import Any

from shared.wire import COUNTER

DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DEFAULT_MAX_ENDPOINTS = 500
OTHER_ROUTE = "__other__"
DEFAULT_FLUSH_INTERVAL = 10.0


class _Endpoint:
    __slots__ = ("buckets", "count", "errors", "request_bytes", "response_bytes", "statuses", "sum")

    def __init__(self, bucket_count: int) -> None:
        self.statuses: dict[int, int] = {}
        self.buckets = [0] * (bucket_count + 1)  # the last slot is +Inf
        self.sum = 0.0
        self.count = 0
        self.errors = 0
        self.request_bytes = 0
        self.response_bytes = 0


class ApiMetrics:
    """Thread-safe request counters and latency histograms by route and method.

    Routes beyond ``max_endpoints`` are folded into route ``__other__`` (counted in
    ``folded_requests``), so a bad route resolver cannot grow memory without bound.
    """

    def __init__(
        self,
        service: str,
        buckets: tuple[float, ...] = DEFAULT_BUCKETS,
        max_endpoints: int = DEFAULT_MAX_ENDPOINTS,
        instance: str | None = None,
    ) -> None:
        self.service = service
        self.instance = instance or new_instance_id()
        self.buckets = tuple(sorted(buckets))
        self.max_endpoints = max_endpoints
        self.folded_requests = 0
        self._endpoints: dict[tuple[str, str], _Endpoint] = {}
        self._lock = threading.Lock()
        _live.add(self)

    def _after_fork_in_child(self) -> None:
        """A forked process (gunicorn --preload worker) is a new instance starting from zero.

        Keeping the parent's id would interleave both processes' counters in one series, and
        keeping the parent's counts would count the parent's requests twice.
        """
        self.instance = new_instance_id()
        self._lock = threading.Lock()
        self._endpoints = {}
        self.folded_requests = 0

    def observe(
        self, route: str, method: str, status: int, duration_s: float, request_bytes: int, response_bytes: int
    ) -> None:
        """Count one finished request."""
        slot = bisect_left(self.buckets, duration_s)
        with self._lock:
            endpoint = self._endpoints.get((route, method))
            if endpoint is None:
                endpoint = self._new_endpoint(route, method)
            endpoint.statuses[status] = endpoint.statuses.get(status, 0) + 1
            endpoint.buckets[slot] += 1
            endpoint.sum += duration_s
            endpoint.count += 1
            if status >= 500:
                endpoint.errors += 1
            endpoint.request_bytes += request_bytes
            endpoint.response_bytes += response_bytes

    def _new_endpoint(self, route: str, method: str) -> _Endpoint:
        if len(self._endpoints) >= self.max_endpoints:
            self.folded_requests += 1
            key = (OTHER_ROUTE, method)
            endpoint = self._endpoints.get(key)
            if endpoint is None:
                endpoint = self._endpoints[key] = _Endpoint(len(self.buckets))
            return endpoint
        endpoint = self._endpoints[(route, method)] = _Endpoint(len(self.buckets))
        return endpoint

    def series(self, ts: float | None = None) -> list[dict[str, Any]]:
        """Return every counter as a metrics-batch series with one point (cumulative values)."""
        now = time.time() if ts is None else ts
        with self._lock:
            snapshot = [
                (
                    route,
                    method,
                    dict(e.statuses),
                    list(e.buckets),
                    e.sum,
                    e.count,
                    e.errors,
                    e.request_bytes,
                    e.response_bytes,
                )
                for (route, method), e in self._endpoints.items()
            ]
        out: list[dict[str, Any]] = []
        for route, method, statuses, buckets, total, count, errors, req_bytes, resp_bytes in snapshot:
            labels = {"service": self.service, "instance": self.instance, "route": route, "method": method}
            for status, value in sorted(statuses.items()):
                out.append(_counter("http_requests_total", {**labels, "status": str(status)}, now, value))
            out.append(_counter("http_request_errors_total", labels, now, errors))
            running = 0
            for bound, value in zip((*self.buckets, None), buckets, strict=True):
                running += value
                le = "+Inf" if bound is None else _format_bound(bound)
                out.append(
                    _counter("http_request_duration_seconds_bucket", {**labels, "le": le}, now, running)
                )
            out.append(_counter("http_request_duration_seconds_sum", labels, now, total))
            out.append(_counter("http_request_duration_seconds_count", labels, now, count))
            out.append(_counter("http_request_size_bytes_sum", labels, now, req_bytes))
            out.append(_counter("http_response_size_bytes_sum", labels, now, resp_bytes))
        return out


_live: weakref.WeakSet[ApiMetrics] = weakref.WeakSet()


def _reset_after_fork() -> None:
    global _registry_lock
    _registry_lock = threading.Lock()
    for metrics in list(_live):
        metrics._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def new_instance_id() -> str:
    """A short random id for one process's counters (a pid repeats after restarts; this does not)."""
    return os.urandom(6).hex()


def _counter(name: str, labels: dict[str, str], ts: float, value: float) -> dict[str, Any]:
    return {"name": name, "type": COUNTER, "labels": labels, "points": [[ts, float(value)]]}


def _format_bound(bound: float) -> str:
    return repr(float(bound)) if bound != int(bound) else f"{bound:.1f}"


_registry: dict[str, ApiMetrics] = {}
_registry_lock = threading.Lock()


def metrics_for(service: str) -> ApiMetrics:
    """Return the process-wide ApiMetrics of a service (created on first use)."""
    with _registry_lock:
        metrics = _registry.get(service)
        if metrics is None:
            metrics = _registry[service] = ApiMetrics(service)
        return metrics


class MetricsFlusher:
    """A daemon thread that sends ``metrics.series()`` through ``client`` every ``interval`` seconds."""

    def __init__(self, metrics: ApiMetrics, client: Any, interval: float = DEFAULT_FLUSH_INTERVAL) -> None:
        self.metrics = metrics
        self.client = client
        self.interval = interval
        self.flushes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def start(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="fleetwatch-metrics", daemon=True)
                self._thread.start()

    def flush(self) -> bool:
        """Send the counters now; return False when the agent did not take them."""
        series = self.metrics.series()
        self.flushes += 1
        return self.client.send_metrics(series) if series else True

    def stop(self, final_flush: bool = True) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if final_flush:
            self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except Exception:  # never let the app's metrics thread die; the next interval retries
                continue
