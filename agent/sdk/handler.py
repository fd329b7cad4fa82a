"""AgentHandler: a logging handler that ships each record to the local agent."""

from __future__ import annotations

import logging

from agent.sdk.client import AgentClient
from agent.sdk.context import get_context
from shared.jsonlog import record_fields, wire_record
from shared.redaction import Redactor, default_redactor


class AgentHandler(logging.Handler):
    """Send records, redacted and in the logs-batch shape, to the agent; never raise or block."""

    def __init__(
        self,
        service: str,
        client: AgentClient | None = None,
        level: int = logging.NOTSET,
        redactor: Redactor | None = None,
    ) -> None:
        super().__init__(level)
        self.service = service
        self.client = client or AgentClient()
        self.redactor = redactor or default_redactor()
        self.errors = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields = record_fields(record, context=get_context(), redactor=self.redactor)
            entry = wire_record(fields, service=self.service, ts=record.created)
            self.client.send_log(entry)
        except Exception:  # a logging call must never break the application
            self.errors += 1

    def close(self) -> None:
        super().close()
        self.client.close()
