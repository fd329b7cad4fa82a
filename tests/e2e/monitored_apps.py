"""Two small monitored applications run as real processes by test_logs_pipeline.py.

    python monitored_apps.py wsgi PORT REQUESTS
    python monitored_apps.py django PORT REQUESTS

Each serves REQUESTS HTTP requests on 127.0.0.1:PORT through the SDK's request middleware,
logs through AgentHandler to the agent's socket (FLEETWATCH_AGENT_SOCKET), flushes its
API metrics and exits.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from wsgiref.simple_server import WSGIRequestHandler, make_server

from django.urls import path

from agent.sdk import AgentClient, AgentHandler, RequestObserver, StructuredLogger, WSGIMiddleware


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def ship_logs(service: str) -> AgentClient:
    client = AgentClient()
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(AgentHandler(service, client=client))
    return client


def wsgi_app(environ, start_response):
    log = StructuredLogger("inventory.views")
    if environ["PATH_INFO"].startswith("/fail"):
        log.error("payment 4242 declined by upstream", order=environ["PATH_INFO"].rsplit("/", 1)[-1])
        start_response("502 Bad Gateway", [("Content-Type", "text/plain")])
        return [b"upstream failed"]
    log.info("stock checked", sku=environ["PATH_INFO"])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def serve_wsgi(port: int, requests: int) -> None:
    client = ship_logs("inventory")
    observer = RequestObserver("inventory", client=client, flush_interval=3600, logger="inventory.requests")
    server = make_server(
        "127.0.0.1", port, WSGIMiddleware(wsgi_app, observer=observer), handler_class=QuietHandler
    )
    print("ready", flush=True)
    for _ in range(requests):
        server.handle_request()
    observer.close()  # flushes the per-endpoint metrics to the agent


def serve_django(port: int, requests: int) -> None:
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="monitored-app",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=["agent.sdk.django.RequestLoggingMiddleware"],
        FLEETWATCH_SDK={
            "service": "shop",
            "socket_path": os.environ["FLEETWATCH_AGENT_SOCKET"],
            "flush_interval": 0.5,
            "logger": "shop.requests",
        },
        # The Django way: the agent handler in LOGGING (Django applies it at setup).
        LOGGING={
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {"agent": {"class": "agent.sdk.AgentHandler", "service": "shop"}},
            "root": {"handlers": ["agent"], "level": "INFO"},
        },
    )
    from django.core.wsgi import get_wsgi_application

    app = get_wsgi_application()
    server = make_server("127.0.0.1", port, app, handler_class=QuietHandler)
    print("ready", flush=True)
    for _ in range(requests):
        server.handle_request()
    time.sleep(1.5)  # the middleware's observer flushes its metrics every 0.5 s


def checkout(request, order: str):
    from django.http import HttpResponse

    StructuredLogger("shop.views").warning("checkout slow for order %s", order, order=order)
    return HttpResponse("done")


urlpatterns = [path("checkout/<str:order>", checkout)]  # ROOT_URLCONF of the Django app


if __name__ == "__main__":
    kind, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    (serve_wsgi if kind == "wsgi" else serve_django)(port, count)
