"""The fleetwatch logging SDK for monitored applications (never imports Django).

from agent.sdk import JSONFormatter, StructuredLogger, log_function_call, set_context
"""

from __future__ import annotations

from agent.sdk.asgi import ASGIMiddleware
from agent.sdk.client import AgentClient
from agent.sdk.context import bound_context, clear_context, get_context, set_context
from agent.sdk.decorators import log_function_call
from agent.sdk.formatter import JSONFormatter, setup_logging
from agent.sdk.handler import AgentHandler
from agent.sdk.inference import (
    InferenceMetrics,
    InferenceRecorder,
    configure_inference,
    inference,
    record_inference,
    track_inference,
    usage_of,
)
from agent.sdk.logger import StructuredLogger
from agent.sdk.metrics import ApiMetrics, MetricsFlusher, metrics_for
from agent.sdk.observer import RequestObserver, route_template
from agent.sdk.wsgi import WSGIMiddleware
from shared.redaction import REDACTED, SENSITIVE_FIELDS, Redactor, redact

__all__ = [
    "REDACTED",
    "SENSITIVE_FIELDS",
    "ASGIMiddleware",
    "AgentClient",
    "AgentHandler",
    "ApiMetrics",
    "InferenceMetrics",
    "InferenceRecorder",
    "JSONFormatter",
    "MetricsFlusher",
    "Redactor",
    "RequestObserver",
    "StructuredLogger",
    "WSGIMiddleware",
    "bound_context",
    "clear_context",
    "configure_inference",
    "get_context",
    "inference",
    "log_function_call",
    "metrics_for",
    "record_inference",
    "redact",
    "route_template",
    "set_context",
    "setup_logging",
    "track_inference",
    "usage_of",
]
