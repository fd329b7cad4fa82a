"""The LLM inference series contract (docs/inference.md), shared by the SDK, the server and the read side.

Every series carries ``model`` and ``organization`` (the monitored app's customer organisation,
"" when not given); ``llm_requests_total`` also ``status`` ("ok" or "error"). Never a user or a
request id: those stay in the log record of the inference.
"""

from __future__ import annotations

import re

REQUESTS = "llm_requests_total"
DURATION = "llm_request_duration_seconds"
TTFT = "llm_time_to_first_token_seconds"
INPUT_TOKENS = "llm_input_tokens_total"
OUTPUT_TOKENS = "llm_output_tokens_total"
COST = "llm_cost_usd_total"
# Tokens of inferences recorded WITHOUT a cost: the read side prices them with the price table
# valid at the time (docs/inference.md, "Cost"). Their cost is never in llm_cost_usd_total.
UNPRICED_INPUT_TOKENS = "llm_unpriced_input_tokens_total"
UNPRICED_OUTPUT_TOKENS = "llm_unpriced_output_tokens_total"

# Model-server gauges and histogram (scrape presets fill them).
RUNNING = "llm_requests_running"
WAITING = "llm_requests_waiting"
KV_CACHE = "llm_kv_cache_usage_ratio"
TPOT = "llm_time_per_output_token_seconds"

DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

OK = "ok"
ERROR = "error"
STATUSES = (OK, ERROR)

MAX_MODEL_LENGTH = 200
MAX_ORGANIZATION_LENGTH = 200
# Printable, no control characters; a model name such as "qwen2.5:7b" or "meta-llama/Llama-3-8B".
LABEL_VALUE_RE = re.compile(r"^[^\x00-\x1f\x7f]*$")


def format_bound(bound: float) -> str:
    """The ``le`` label of a bucket bound, as the SDK's http histograms spell it ("0.05", "1.0")."""
    return repr(float(bound)) if bound != int(bound) else f"{bound:.1f}"


def bucket_labels(buckets: tuple[float, ...]) -> list[str]:
    """The ``le`` values of a histogram, +Inf last."""
    return [format_bound(b) for b in buckets] + ["+Inf"]
