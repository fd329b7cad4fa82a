"""Per-endpoint API metrics kept as cumulative counters and flushed to the agent periodically.

Names (docs/contracts.md): http_requests_total{route,method,status},
http_request_errors_total{route,method} (5xx),
http_request_duration_seconds_bucket{route,method,status_class,le},
http_request_duration_seconds_sum / _count{route,method,status_class}, http_request_size_bytes_sum{route,method},
http_response_size_bytes_sum{route,method} (all counters), and the gauge
http_request_duration_seconds_max{route,method,status_class}: the longest request since the previous
flush (reset by each flush the agent took; a class without requests in the interval sends no point).
status_class is ``1xx`` .. ``5xx`` (``other`` for a code outside 100..599). Every series also has
the labels ``service`` and ``instance``: a short random id of the ApiMetrics (one per process), so
that the processes of one app on one host (gunicorn workers) each write their own cumulative series
instead of interleaving their counters in one (which the server would read as counter resets).
The server sums over it.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from bisect import bisect_left
from typing import Any

from shared.wire import COUNTER, GAUGE

DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DEFAULT_MAX_ENDPOINTS = 500
OTHER_ROUTE = "__other__"
DEFAULT_FLUSH_INTERVAL = 10.0
MAX_NAME = "http_request_duration_seconds_max"
# Security counters by status: {service, instance, route, organization} (docs/contracts.md).
SECURITY_COUNTERS = {
    401: "http_auth_failures_total",
    403: "http_forbidden_total",
    429: "http_rate_limited_total",
}
DEFAULT_MAX_SECURITY_SERIES = 1000
MAX_ORGANIZATION_CHARS = 200


def status_class(status: int) -> str:
    """``2xx`` for 200..299 and so on; ``other`` outside 100..599."""
    return f"{status // 100}xx" if 100 <= status <= 599 else "other"


class _Histogram:
    __slots__ = ("buckets", "count", "max", "sum")

    def __init__(self, bucket_count: int) -> None:
        self.buckets = [0] * (bucket_count + 1)  # the last slot is +Inf
        self.sum = 0.0
        self.count = 0
        self.max: float | None = None  # the longest request since the last flush


class _Endpoint:
    __slots__ = ("bucket_count", "classes", "errors", "request_bytes", "response_bytes", "statuses")

    def __init__(self, bucket_count: int) -> None:
        self.bucket_count = bucket_count
        self.statuses: dict[int, int] = {}
        self.classes: dict[str, _Histogram] = {}
        self.errors = 0
        self.request_bytes = 0
        self.response_bytes = 0

    def histogram(self, status: int) -> _Histogram:
        name = status_class(status)
        hist = self.classes.get(name)
        if hist is None:
            hist = self.classes[name] = _Histogram(self.bucket_count)
        return hist


class ApiMetrics:
    """Thread-safe request counters and latency histograms by route, method and status class.

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
        # (status, route, organization) -> count; organisations beyond the cap fold into __other__
        self._security: dict[tuple[int, str, str], list[float]] = {}  # [count, created]
        self._security_sent: set[tuple[int, str, str]] = set()
        self.folded_security = 0
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
        self._security = {}
        self._security_sent = set()
        self.folded_requests = 0
        self.folded_security = 0

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
            hist = endpoint.histogram(status)
            hist.buckets[slot] += 1
            hist.sum += duration_s
            hist.count += 1
            if hist.max is None or duration_s > hist.max:
                hist.max = duration_s
            if status >= 500:
                endpoint.errors += 1
            endpoint.request_bytes += request_bytes
            endpoint.response_bytes += response_bytes

    def observe_security(self, route: str, status: int, organization: str) -> None:
        """Count a 401, 403 or 429 answer of ``route`` for ``organization`` (the header or context)."""
        if status not in SECURITY_COUNTERS:
            return
        key = (status, route, organization[:MAX_ORGANIZATION_CHARS])
        with self._lock:
            counter = self._security.get(key)
            if counter is None:
                if len(self._security) >= DEFAULT_MAX_SECURITY_SERIES:
                    self.folded_security += 1
                    key = (status, OTHER_ROUTE, OTHER_ROUTE)
                    counter = self._security.get(key)
                if counter is None:
                    counter = self._security[key] = [0, time.time()]
            counter[0] += 1

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

    def series(self, ts: float | None = None, reset_max: bool = False) -> list[dict[str, Any]]:
        """Return every series as a metrics-batch series with one point (counters cumulative).

        The ``http_request_duration_seconds_max`` gauges hold the longest request since the
        last reset; ``reset_max=True`` (the flusher) starts the next interval. A caller whose send
        failed gives the maxima back with ``restore_max(series)`` so they are not lost.
        """
        now = time.time() if ts is None else ts
        with self._lock:
            snapshot = []
            for (route, method), e in self._endpoints.items():
                classes = []
                for name, h in sorted(e.classes.items()):
                    classes.append((name, list(h.buckets), h.sum, h.count, h.max))
                    if reset_max:
                        h.max = None
                snapshot.append(
                    (route, method, dict(e.statuses), classes, e.errors, e.request_bytes, e.response_bytes)
                )
            security = [
                (key, count, created, key in self._security_sent)
                for key, (count, created) in self._security.items()
            ]
            if reset_max:
                self._security_sent.update(self._security)
        out: list[dict[str, Any]] = []
        for (status, route, organization), value, created, sent in sorted(security):
            labels = {
                "service": self.service,
                "instance": self.instance,
                "route": route,
                "organization": organization,
            }
            item = _counter(SECURITY_COUNTERS[status], labels, now, value)
            if not sent:  # a new counter starts from a zero point, so its first answers count
                item["points"].insert(0, [created - 0.001, 0.0])
            out.append(item)
        for route, method, statuses, classes, errors, req_bytes, resp_bytes in snapshot:
            labels = {"service": self.service, "instance": self.instance, "route": route, "method": method}
            for status, value in sorted(statuses.items()):
                out.append(_counter("http_requests_total", {**labels, "status": str(status)}, now, value))
            out.append(_counter("http_request_errors_total", labels, now, errors))
            for name, buckets, total, count, longest in classes:
                class_labels = {**labels, "status_class": name}
                running = 0
                for bound, value in zip((*self.buckets, None), buckets, strict=True):
                    running += value
                    le = "+Inf" if bound is None else _format_bound(bound)
                    out.append(
                        _counter(
                            "http_request_duration_seconds_bucket", {**class_labels, "le": le}, now, running
                        )
                    )
                out.append(_counter("http_request_duration_seconds_sum", class_labels, now, total))
                out.append(_counter("http_request_duration_seconds_count", class_labels, now, count))
                if longest is not None:
                    out.append(
                        {
                            "name": MAX_NAME,
                            "type": GAUGE,
                            "labels": class_labels,
                            "points": [[now, float(longest)]],
                        }
                    )
            out.append(_counter("http_request_size_bytes_sum", labels, now, req_bytes))
            out.append(_counter("http_response_size_bytes_sum", labels, now, resp_bytes))
        return out

    def restore_max(self, series: list[dict[str, Any]]) -> None:
        """Merge the maxima of ``series`` (taken with reset_max=True, then not delivered) back."""
        codes = {name: code for code, name in SECURITY_COUNTERS.items()}
        with self._lock:
            for item in series:
                if item["name"] in codes and len(item["points"]) > 1:
                    labels = item["labels"]
                    self._security_sent.discard(
                        (codes[item["name"]], labels["route"], labels["organization"])
                    )
                    continue
                if item["name"] != MAX_NAME:
                    continue
                labels = item["labels"]
                endpoint = self._endpoints.get((labels["route"], labels["method"]))
                hist = endpoint.classes.get(labels["status_class"]) if endpoint else None
                if hist is not None:
                    value = item["points"][0][1]
                    hist.max = value if hist.max is None else max(hist.max, value)


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
        series = self.metrics.series(reset_max=True)
        self.flushes += 1
        if not series:
            return True
        try:
            sent = self.client.send_metrics(series)
        except Exception:
            self.metrics.restore_max(series)
            raise
        if not sent:
            self.metrics.restore_max(series)
        return sent

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
