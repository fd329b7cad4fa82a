"""A monitored application run as a separate process by the endpoint tests.

It logs through AgentHandler, serves a few requests through WSGIMiddleware and flushes its
API metrics, all to the agent socket named by FLEETWATCH_AGENT_SOCKET; then prints the
client's counters as JSON.
"""

from __future__ import annotations

import json
import logging
import sys
from wsgiref.util import setup_testing_defaults

from agent.sdk import AgentClient, AgentHandler, RequestObserver, StructuredLogger, WSGIMiddleware


def app(environ, start_response):
    StructuredLogger("billing.views").info("charging", amount=12, card="4111 1111 1111 1111")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def main() -> None:
    client = AgentClient()
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(AgentHandler("billing", client=client))
    log = StructuredLogger("billing.main")
    log.set_context(tenant="acme")
    log.info("started", version="1.2", password="hunter2")
    try:
        raise KeyError("missing api_key=abc123")
    except KeyError:
        log.exception("lookup failed")
    observer = RequestObserver("billing", client=client, flush_interval=60, logger="billing.requests")
    wrapped = WSGIMiddleware(app, observer=observer)
    for path in ("/invoices/1", "/invoices/2"):
        environ = {"PATH_INFO": path, "HTTP_X_REQUEST_ID": f"req{path[-1]}"}
        setup_testing_defaults(environ)
        body = wrapped(environ, lambda status, headers, exc_info=None: None)
        list(body)
        body.close()
    observer.close()  # final metrics flush
    client.flush()  # the log records still in the app's batch (atexit would also send them)
    json.dump(client.stats(), sys.stdout)


if __name__ == "__main__":
    main()
