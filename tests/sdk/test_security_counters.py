"""401, 403 and 429 answers counted per route and organisation by the request observer."""

from __future__ import annotations

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


def test_the_wsgi_middleware_takes_the_organisation_from_the_header():
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
        ("http_auth_failures_total", "/login", "acme"): 1,
        ("http_auth_failures_total", "/login", ""): 1,
        ("http_forbidden_total", "/admin", "beta"): 1,
        ("http_rate_limited_total", "/chat", "acme"): 1,
    }
