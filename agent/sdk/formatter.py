"""The SDK's JSON formatter: shared.jsonlog's formatter plus the log context and service name."""

from __future__ import annotations

import logging
import sys
from typing import Any

from agent.sdk.context import get_context
from shared.jsonlog import JSONFormatter as _BaseJSONFormatter
from shared.jsonlog import record_fields
from shared.redaction import Redactor


class JSONFormatter(_BaseJSONFormatter):
    """Format records as one JSON line: the seed example's fields, the context, extras, redacted."""

    def __init__(self, service: str | None = None, redactor: Redactor | None = None) -> None:
        super().__init__(redactor=redactor)
        self.service = service

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        entry = record_fields(record, context=get_context(), redactor=self.redactor)
        if self.service and "service" not in entry:
            entry["service"] = self.service
        return entry


def setup_logging(
    level: int | str = logging.INFO,
    json_format: bool = True,
    service: str | None = None,
    stream: Any = None,
    logger: logging.Logger | None = None,
) -> logging.Logger:
    """Attach one stream handler (JSON or plain text) to a logger (the root by default)."""
    target = logger or logging.getLogger()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        JSONFormatter(service=service)
        if json_format
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    target.addHandler(handler)
    target.setLevel(level)
    return target
