"""Measure the SDK's cost: request middleware overhead and the price of one JSON log call.

    .venv/bin/python bench/sdk_overhead.py [--requests 5000] [--rounds 5]

A trivial WSGI app is called directly in-process with and without WSGIMiddleware (no
server, so only the middleware's own work is measured); each figure is the median over
rounds of the mean CPU ns per call in that round (CPU time of this process, so that other
work on a shared machine does not inflate the figures). Runs in well under a minute.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from agent.sdk import (
    AgentClient,
    AgentHandler,
    ApiMetrics,
    JSONFormatter,
    RequestObserver,
    StructuredLogger,
    WSGIMiddleware,
)


class NullStream(io.TextIOBase):
    """A stream that accepts and discards text (the cost of formatting stays, I/O goes)."""

    def write(self, text: str) -> int:
        return len(text)


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def environ() -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/api/v1/items/42",
        "QUERY_STRING": "page=2",
        "HTTP_X_REQUEST_ID": "req-abc123",
        "CONTENT_LENGTH": "",
        "wsgi.input": io.BytesIO(),
    }


def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
    return None


CLOCK = time.process_time_ns


def per_call_ns(func: Callable[[], None], calls: int, rounds: int) -> float:
    """Median over rounds of the mean CPU time per call, in nanoseconds.

    CPU time of this process, not wall time: on a machine shared with other work, wall time
    mostly measures how long the process waited for a core.
    """
    func()  # warm up
    samples = []
    for _ in range(rounds):
        start = CLOCK()
        for _ in range(calls):
            func()
        samples.append((CLOCK() - start) / calls)
    return statistics.median(samples)


def request_runner(wsgi_app: Any) -> Callable[[], None]:
    env = environ()

    def run() -> None:
        body = wsgi_app(dict(env), start_response)
        for _ in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()

    return run


def logger_with(name: str, handler: logging.Handler | None, level: int = logging.INFO) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers.clear()
    logger.propagate = False
    logger.setLevel(level)
    if handler is not None:
        logger.addHandler(handler)
    return logger


def json_handler() -> logging.Handler:
    handler = logging.StreamHandler(NullStream())
    handler.setFormatter(JSONFormatter(service="bench"))
    return handler


DRAIN = """
import socket, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
sock.bind(sys.argv[1])
print("ready", flush=True)
while True:
    sock.recv(65536)
"""


def live_agent_socket() -> tuple[str, subprocess.Popen]:
    """A receiving datagram socket in a child process (its CPU is not this process's)."""
    path = os.path.join(tempfile.mkdtemp(prefix="fw-bench-"), "agent.sock")
    child = subprocess.Popen([sys.executable, "-c", DRAIN, path], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    return path, child


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    n, rounds = args.requests, args.rounds

    live_path, drain = live_agent_socket()
    baseline = per_call_ns(request_runner(app), n, rounds)
    variants = {
        "middleware, request log disabled (ids+context+metrics)": logger_with(
            "bench.off", None, logging.WARNING
        ),
        "middleware + JSON request log to a null stream": logger_with("bench.json", json_handler()),
        "middleware + AgentHandler, agent up (datagram sent)": logger_with(
            "bench.agent_up", AgentHandler("bench", client=AgentClient(live_path))
        ),
        "middleware + AgentHandler, agent down (drop+count)": logger_with(
            "bench.agent", AgentHandler("bench", client=AgentClient("/tmp/fleetwatch-bench-no-agent.sock"))
        ),
    }
    print(f"WSGI request, app called directly ({n} requests x {rounds} rounds, median CPU ns per request)")
    print(f"  {'bare app':58s} {baseline:10.0f} ns/request")
    for label, logger in variants.items():
        observer = RequestObserver("bench", metrics=ApiMetrics("bench"), logger=logger, slow_threshold_ms=1e9)
        with_mw = per_call_ns(request_runner(WSGIMiddleware(app, observer=observer)), n, rounds)
        overhead = with_mw - baseline
        print(
            f"  {label:58s} {with_mw:10.0f} ns/request  overhead {overhead / 1000:6.1f} us"
            f"  ratio {with_mw / baseline:5.1f}x"
        )

    drain.kill()
    calls = max(n // 2, 1000)
    std = logger_with("bench.log", json_handler())
    structured = StructuredLogger("bench.log")
    disabled = logger_with("bench.disabled", json_handler(), logging.WARNING)
    text_handler = logging.StreamHandler(NullStream())
    text_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    plain = logger_with("bench.plain", text_handler)
    print(f"\nOne log call ({calls} calls x {rounds} rounds)")
    figures = {
        "logging.info + extra, JSONFormatter (redacted)": lambda: std.info(
            "Request completed", extra={"method": "POST", "path": "/api/v1/generate", "status_code": 200}
        ),
        "StructuredLogger.info with 3 fields, JSONFormatter": lambda: structured.info(
            "Request completed", method="POST", path="/api/v1/generate", status_code=200
        ),
        "logging.debug below the logger level (filtered)": lambda: disabled.debug("x"),
        "reference: stdlib logging.Formatter text line": lambda: plain.info(
            "Request completed", extra={"method": "POST", "path": "/api/v1/generate", "status_code": 200}
        ),
    }
    for label, func in figures.items():
        print(f"  {label:58s} {per_call_ns(func, calls, rounds):10.0f} ns/call")


if __name__ == "__main__":
    main()
