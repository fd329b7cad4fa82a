"""Default alert rules of the inference figures (created per organisation by migration 0002)."""

from __future__ import annotations

from typing import Any

from shared import inference as c

TTFT_P95_THRESHOLD_S = 2.0
AUTH_FAILURE_BURST = 20

INFERENCE_RULES: list[dict[str, Any]] = [
    {
        "name": "LLM budget 80% used",
        "description": "A cost budget (admin: Budgets) is 80 % spent for its day or month",
        "severity": "medium",
        "query_type": "llm_budget",
        "query": {"period": "day"},
        "comparison": ">=",
        "threshold": 80,
        "for_seconds": 0,
        "nodata_policy": "ok",
        "annotations": {"summary": "{customer_organization} {model}: {value:.0f}% of the daily budget spent"},
    },
    {
        "name": "LLM budget exceeded",
        "description": "A cost budget is spent for its day",
        "severity": "high",
        "query_type": "llm_budget",
        "query": {"period": "day"},
        "comparison": ">=",
        "threshold": 100,
        "for_seconds": 0,
        "nodata_policy": "ok",
        "annotations": {"summary": "{customer_organization} {model}: {value:.0f}% of the daily budget spent"},
    },
    {
        "name": "LLM monthly budget 80% used",
        "description": "A monthly cost budget is 80 % spent",
        "severity": "medium",
        "query_type": "llm_budget",
        "query": {"period": "month"},
        "comparison": ">=",
        "threshold": 80,
        "for_seconds": 0,
        "nodata_policy": "ok",
        "annotations": {
            "summary": "{customer_organization} {model}: {value:.0f}% of the monthly budget spent"
        },
    },
    {
        "name": "LLM monthly budget exceeded",
        "description": "A monthly cost budget is spent",
        "severity": "high",
        "query_type": "llm_budget",
        "query": {"period": "month"},
        "comparison": ">=",
        "threshold": 100,
        "for_seconds": 0,
        "nodata_policy": "ok",
        "annotations": {
            "summary": "{customer_organization} {model}: {value:.0f}% of the monthly budget spent"
        },
    },
    {
        "name": "LLM slow first token",
        "description": f"p95 time to first token above {TTFT_P95_THRESHOLD_S:g} s for 5 minutes",
        "severity": "medium",
        "query_type": "histogram_quantile",
        "query": {"metric": c.TTFT, "quantile": 0.95, "window": 300, "group_by": ["model"], "matchers": []},
        "comparison": ">",
        "threshold": TTFT_P95_THRESHOLD_S,
        "for_seconds": 300,
        "nodata_policy": "ok",
        "annotations": {"summary": "p95 time to first token of {model} is {value:.2f}s"},
    },
    {
        "name": "LLM error rate",
        "description": "More than 5 % of a model's inferences fail, for 5 minutes",
        "severity": "high",
        "query_type": "ratio",
        "query": {
            "numerator": {
                "metric": c.REQUESTS,
                "matchers": [{"name": "status", "op": "=", "value": c.ERROR}],
                "aggregation": "increase",
                "window": 300,
            },
            "denominator": {"metric": c.REQUESTS, "matchers": [], "aggregation": "increase", "window": 300},
            "scale": 100,
            "group_by": ["model"],
        },
        "comparison": ">",
        "threshold": 5,
        "for_seconds": 300,
        "nodata_policy": "ok",
        "annotations": {"summary": "{value:.1f}% of {model}'s inferences fail"},
    },
    {
        "name": "LLM KV cache full",
        "description": "A model server's KV cache above 90 % for 10 minutes",
        "severity": "high",
        "query_type": "metric",
        "query": {
            "metric": c.KV_CACHE,
            "matchers": [],
            "aggregation": "avg",
            "window": 60,
            "group_by": ["model", "host"],
        },
        "comparison": ">",
        "threshold": 0.9,
        "for_seconds": 600,
        "nodata_policy": "ok",
        "annotations": {"summary": "KV cache of {model} on {host} is {value:.0%} full"},
    },
    {
        "name": "Authentication failure burst",
        "description": f"More than {AUTH_FAILURE_BURST} 401 answers in 5 minutes from one service",
        "severity": "high",
        "query_type": "metric",
        "query": {
            "metric": "http_auth_failures_total",
            "matchers": [],
            "aggregation": "increase",
            "window": 300,
            "group_by": ["service"],
        },
        "comparison": ">",
        "threshold": AUTH_FAILURE_BURST,
        "for_seconds": 0,
        "nodata_policy": "ok",
        "annotations": {"summary": "{service} answered {value:.0f} authentication failures in 5 minutes"},
    },
]


def ensure_rules(organization_id: int, rule_model: Any = None) -> list[str]:
    """Create the inference rules missing in one organisation; return the names created."""
    from collector_server.alerts.defaults import create_missing_rules

    return create_missing_rules(organization_id, INFERENCE_RULES, rule_model)
