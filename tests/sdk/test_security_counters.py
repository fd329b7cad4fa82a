"""401, 403 and 429 answers counted per route and organisation by the request observer."""

from __future__ import annotations

import pytest

from agent.sdk import ApiMetrics, RequestObserver, bound_context


def security(metrics: ApiMetrics) -> dict:
    return {
        (s["name"], s["labels"]["route"], s["labels"]["organization"]): s["points"][-1][1]
        for s in metrics.series()
        if s["name"].startswith(("http_auth", "http_forbidden", "http_rate"))
    }


def finish(
    observer: RequestObserver, status: int, route: str = "/api/x", organization: str | None = None
) -> None:
    state = observer.begin(None, None)
    observer.finish(
        state,
        method="GET",
        path=route,
        route=route,
        status=status,
        request_bytes=0,
        response_bytes=0,
        organization=organization,
    )


def test_status_codes_map_to_their_counters_with_the_organisation():
    metrics = ApiMetrics("shop")
    observer = RequestObserver("shop", metrics=metrics, log_requests=False)
    finish(observer, 401, organization="acme")
    finish(observer, 401, organization="acme")
    finish(observer, 403, "/admin")
    finish(observer, 429, organization="beta")
    finish(observer, 200)
    finish(observer, 404)
    with bound_context(organization="ctx-org"):
        finish(observer, 401)
    assert security(metrics) == {
        ("http_auth_failures_total", "/api/x", "acme"): 2,
        ("http_auth_failures_total", "/api/x", "ctx-org"): 1,
        ("http_forbidden_total", "/admin", ""): 1,
        ("http_rate_limited_total", "/api/x", "beta"): 1,
    }


def test_a_new_counter_starts_from_a_zero_point_and_organisations_are_capped():
    metrics = ApiMetrics("shop")
    metrics.observe_security("/a", 401, "x")
    first = [s for s in metrics.series(reset_max=True) if s["name"] == "http_auth_failures_total"]
    assert [p[1] for p in first[0]["points"]] == [0.0, 1.0]
    metrics.observe_security("/a", 401, "x")
    again = [s for s in metrics.series(reset_max=True) if s["name"] == "http_auth_failures_total"]
    assert [p[1] for p in again[0]["points"]] == [2.0]
    for i in range(1100):
        metrics.observe_security("/a", 401, f"org-{i}")
    orgs = {k[2] for k in security(metrics)}
    assert len(orgs) == 1001 and "__other__" in orgs
    assert metrics.folded_security == 101  # "x" and org-0 .. org-998 fill the 1,000


def test_the_wsgi_middleware_takes_the_organisation_from_the_header_except_for_401s():
    import io

    from agent.sdk import WSGIMiddleware

    def app(environ, start_response):
        code = {"/login": "401 Unauthorized", "/admin": "403 Forbidden"}.get(
            environ["PATH_INFO"], "429 Too Many"
        )
        start_response(code, [("Content-Type", "text/plain")])
        return [b"no"]

    metrics = ApiMetrics("gw")
    wrapped = WSGIMiddleware(app, observer=RequestObserver("gw", metrics=metrics, log_requests=False))
    for path, org in (("/login", "acme"), ("/login", None), ("/admin", "beta"), ("/chat", "acme")):
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": path, "wsgi.input": io.BytesIO()}
        if org:
            environ["HTTP_X_ORGANIZATION"] = org
        body = wrapped(environ, lambda *a: None)
        list(body)
        body.close()  # the server closes the body: the request is counted then
    assert security(metrics) == {
        # a 401's X-Organization is the unauthenticated caller's choice: never the label
        ("http_auth_failures_total", "/login", ""): 2,
        ("http_forbidden_total", "/admin", "beta"): 1,
        ("http_rate_limited_total", "/chat", "acme"): 1,
    }


def test_the_wsgi_middleware_takes_a_401s_organisation_from_the_log_context_only():
    import io

    from agent.sdk import WSGIMiddleware, set_context

    def app(environ, start_response):
        set_context(organization="ctx-org")  # what the app learnt (e.g. from the API key)
        start_response("401 Unauthorized", [("Content-Type", "text/plain")])
        return [b"no"]

    metrics = ApiMetrics("gw-ctx")
    wrapped = WSGIMiddleware(app, observer=RequestObserver("gw-ctx", metrics=metrics, log_requests=False))
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/login",
        "wsgi.input": io.BytesIO(),
        "HTTP_X_ORGANIZATION": "victim",
    }
    body = wrapped(environ, lambda *a: None)
    list(body)
    body.close()
    assert security(metrics) == {("http_auth_failures_total", "/login", "ctx-org"): 1}


# Through the Django middleware (agent/sdk/django.py) and Django's test client.


@pytest.fixture
def django_metrics(settings):
    from agent.sdk.metrics import metrics_for

    settings.ROOT_URLCONF = "tests.sdk.django_urls"
    settings.MIDDLEWARE = ["agent.sdk.django.RequestLoggingMiddleware"]
    settings.FLEETWATCH_SDK = {"service": "sec-dj", "logger": "sec.dj.requests"}
    metrics = metrics_for("sec-dj")
    metrics._endpoints.clear()
    metrics._security.clear()
    metrics._security_sent.clear()
    return metrics


def test_the_django_middleware_counts_401_403_429_by_route_and_organisation(client, django_metrics):
    route = "/api/guarded/<int:code>/"
    assert client.get("/api/guarded/401/", HTTP_X_ORGANIZATION="victim").status_code == 401
    assert (
        client.get("/api/guarded/401/", {"ctx": "ctx-org"}, HTTP_X_ORGANIZATION="victim").status_code == 401
    )
    assert client.get("/api/guarded/403/", HTTP_X_ORGANIZATION="beta").status_code == 403
    assert client.get("/api/guarded/403/", {"ctx": "ctx-org"}).status_code == 403
    assert client.get("/api/guarded/429/", HTTP_X_ORGANIZATION="acme").status_code == 429
    assert client.get("/api/guarded/429/", HTTP_X_ORGANIZATION="acme").status_code == 429
    assert client.get("/api/guarded/404/", HTTP_X_ORGANIZATION="acme").status_code == 404
    assert client.get("/api/guarded/200/", HTTP_X_ORGANIZATION="acme").status_code == 200
    assert security(django_metrics) == {
        ("http_auth_failures_total", route, ""): 1,  # the header of a 401 is not believed
        ("http_auth_failures_total", route, "ctx-org"): 1,
        ("http_forbidden_total", route, "beta"): 1,
        ("http_forbidden_total", route, "ctx-org"): 1,
        ("http_rate_limited_total", route, "acme"): 2,
    }


def test_the_django_middleware_caps_the_organisation_header(client, django_metrics):
    assert client.get("/api/guarded/429/", HTTP_X_ORGANIZATION="o" * 500).status_code == 429
    ((_, _, organization),) = security(django_metrics)
    assert organization == "o" * 200


# Through the ASGI middleware (agent/sdk/asgi.py), called as an ASGI server would.


async def guarded_asgi(scope, receive, send) -> None:
    from types import SimpleNamespace

    from agent.sdk import set_context

    await receive()
    code = int(scope["path"].rsplit("/", 1)[-1])
    scope["route"] = SimpleNamespace(path="/guarded/{code}")
    if b"ctx=" in scope["query_string"]:
        set_context(organization=scope["query_string"].split(b"=", 1)[1].decode())
    await send({"type": "http.response.start", "status": code, "headers": []})
    await send({"type": "http.response.body", "body": b"no"})


def asgi_get(app, path: str, organization: str | None = None, query: bytes = b"") -> int:
    import asyncio

    headers = [(b"x-organization", organization.encode())] if organization else []
    scope = {"type": "http", "method": "GET", "path": path, "query_string": query, "headers": headers}
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent[0]["status"]


def test_the_asgi_middleware_counts_401_403_429_by_route_and_organisation():
    from agent.sdk import ASGIMiddleware

    metrics = ApiMetrics("sec-asgi")
    app = ASGIMiddleware(
        guarded_asgi, observer=RequestObserver("sec-asgi", metrics=metrics, log_requests=False)
    )
    assert asgi_get(app, "/guarded/401", "victim") == 401
    assert asgi_get(app, "/guarded/401", "victim", b"ctx=ctx-org") == 401
    assert asgi_get(app, "/guarded/403", "beta") == 403
    assert asgi_get(app, "/guarded/403", None, b"ctx=ctx-org") == 403
    assert asgi_get(app, "/guarded/429", "acme") == 429
    assert asgi_get(app, "/guarded/429", "o" * 500) == 429
    assert asgi_get(app, "/guarded/404", "acme") == 404
    assert asgi_get(app, "/guarded/200", "acme") == 200
    route = "/guarded/{code}"
    assert security(metrics) == {
        ("http_auth_failures_total", route, ""): 1,  # the header of a 401 is not believed
        ("http_auth_failures_total", route, "ctx-org"): 1,
        ("http_forbidden_total", route, "beta"): 1,
        ("http_forbidden_total", route, "ctx-org"): 1,
        ("http_rate_limited_total", route, "acme"): 1,
        ("http_rate_limited_total", route, "o" * 200): 1,
    }
