"""A test exporter serving vLLM-, TGI- and Ollama-exporter-shaped metrics, moving between scrapes.

Every GET is one step: the first answers zeros, each later one adds STEP's requests (until
``steps`` is reached, then the figures stay), so the totals a test expects are known:
``expected(kind, step)``. Served on 127.0.0.1 in the caller's port range.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VLLM_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
# Per step: 10 requests that stop, 1 aborted; 100 prompt and 50 generated tokens each.
OK_PER_STEP, ABORTED_PER_STEP = 10, 1
PROMPT_PER_REQUEST, GENERATED_PER_REQUEST = 100, 50
# vLLM's own bucket bounds (vllm/engine/metrics.py).
VLLM_TTFT = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
VLLM_E2E = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0)
VLLM_TPOT = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
# The observations of one step: OK requests at the first value, the aborted one at the second.
TTFT_VALUES, E2E_VALUES, TPOT_VALUE = (0.08, 0.75), (0.9, 4.0), 0.02
KV_CACHE = 0.42


def _histogram(name: str, labels: str, bounds: tuple[float, ...], values: list[tuple[float, int]]) -> str:
    lines = [f"# HELP {name} test histogram", f"# TYPE {name} histogram"]
    sep = "," if labels else ""
    for bound in (*bounds, float("inf")):
        count = sum(n for value, n in values if value <= bound)
        le = "+Inf" if bound == float("inf") else repr(float(bound))
        lines.append(f'{name}_bucket{{{labels}{sep}le="{le}"}} {float(count)}')
    lines.append(f"{name}_sum{{{labels}}} {float(sum(v * n for v, n in values))}")
    lines.append(f"{name}_count{{{labels}}} {float(sum(n for _, n in values))}")
    return "\n".join(lines)


def exposition(kind: str, done: int) -> str:
    """The text of a server that has completed ``done`` steps."""
    ok, aborted = OK_PER_STEP * done, ABORTED_PER_STEP * done
    total = ok + aborted
    if kind == "vllm":
        labels = f'engine="0",model_name="{VLLM_MODEL}"'
        return "\n".join(
            [
                "# TYPE vllm:num_requests_running gauge",
                f"vllm:num_requests_running{{{labels}}} 3.0",
                "# TYPE vllm:num_requests_waiting gauge",
                f"vllm:num_requests_waiting{{{labels}}} 1.0",
                "# TYPE vllm:kv_cache_usage_perc gauge",
                f"vllm:kv_cache_usage_perc{{{labels}}} {KV_CACHE}",
                "# TYPE vllm:prompt_tokens counter",
                f"vllm:prompt_tokens_total{{{labels}}} {float(total * PROMPT_PER_REQUEST)}",
                "# TYPE vllm:generation_tokens counter",
                f"vllm:generation_tokens_total{{{labels}}} {float(total * GENERATED_PER_REQUEST)}",
                "# TYPE vllm:request_success counter",
                f'vllm:request_success_total{{engine="0",finished_reason="stop",model_name="{VLLM_MODEL}"}} {float(ok)}',
                f'vllm:request_success_total{{engine="0",finished_reason="abort",model_name="{VLLM_MODEL}"}} '
                f"{float(aborted)}",
                _histogram(
                    "vllm:time_to_first_token_seconds",
                    labels,
                    VLLM_TTFT,
                    [(TTFT_VALUES[0], ok), (TTFT_VALUES[1], aborted)],
                ),
                _histogram(
                    "vllm:e2e_request_latency_seconds",
                    labels,
                    VLLM_E2E,
                    [(E2E_VALUES[0], ok), (E2E_VALUES[1], aborted)],
                ),
                _histogram("vllm:time_per_output_token_seconds", labels, VLLM_TPOT, [(TPOT_VALUE, total)]),
                "",
            ]
        )
    if kind == "tgi":
        return "\n".join(
            [
                "# TYPE tgi_request_count counter",
                f"tgi_request_count {total}",
                "# TYPE tgi_request_success counter",
                f"tgi_request_success {ok}",
                "# TYPE tgi_request_failure counter",
                f'tgi_request_failure{{err="validation"}} {aborted}',
                "# TYPE tgi_queue_size gauge",
                "tgi_queue_size 2",
                "# TYPE tgi_batch_current_size gauge",
                "tgi_batch_current_size 4",
                _histogram(
                    "tgi_request_duration",
                    "",
                    (0.5, 1.0, 5.0),
                    [(E2E_VALUES[0], ok), (E2E_VALUES[1], aborted)],
                ),
                _histogram("tgi_request_input_length", "", (100.0, 1000.0), [(PROMPT_PER_REQUEST, total)]),
                _histogram(
                    "tgi_request_generated_tokens", "", (100.0, 1000.0), [(GENERATED_PER_REQUEST, total)]
                ),
                _histogram(
                    "tgi_request_mean_time_per_token_duration", "", (0.01, 0.1), [(TPOT_VALUE, total)]
                ),
                "",
            ]
        )
    if kind == "ollama":
        labels = 'model="llama3.2:3b"'
        return "\n".join(
            [
                "# TYPE ollama_requests_total counter",
                f"ollama_requests_total{{{labels}}} {float(total)}",
                "# TYPE ollama_tokens_processed_total counter",
                f"ollama_tokens_processed_total{{{labels}}} {float(total * PROMPT_PER_REQUEST)}",
                "# TYPE ollama_tokens_generated_total counter",
                f"ollama_tokens_generated_total{{{labels}}} {float(total * GENERATED_PER_REQUEST)}",
                _histogram(
                    "ollama_response_seconds",
                    labels,
                    (0.5, 1.0, 5.0),
                    [(E2E_VALUES[0], ok), (E2E_VALUES[1], aborted)],
                ),
                "",
            ]
        )
    raise ValueError(kind)


def free_port_in(first: int, last: int) -> int:
    for port in range(first, last + 1):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {first}-{last}")


class ModelServer:
    """Serve one kind's exposition at /metrics; each GET is a step (at most ``steps`` + 1 distinct)."""

    def __init__(self, kind: str, steps: int = 3, ports: tuple[int, int] = (21200, 21299)) -> None:
        self.kind, self.steps, self.gets = kind, steps, 0
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with owner._lock:
                    done = min(owner.gets, owner.steps)
                    owner.gets += 1
                body = exposition(owner.kind, done).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.port = free_port_in(*ports)
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.port}/metrics"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
