"""Every URL pattern of the project, as anonymous, viewer, operator and admin of A and admin of B.

The patterns come from the URL resolver, so an endpoint added later is walked too: a pattern
missing from the tables below fails ``test_every_url_pattern_has_an_expectation``. Each case
runs as every actor against A's objects (A's admin last, so its writes come after the others'
attempts) and checks the status; no response to B's admin may contain A's data (MARKER).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests.orgs.conftest import ACTORS, MARKER, World

Expect = dict[str, int | tuple[int, ...]]


def expect(anon: Any, b_admin: Any, viewer: Any, operator: Any, admin: Any) -> Expect:
    return dict(zip(ACTORS, (anon, b_admin, viewer, operator, admin), strict=True))


PUBLIC = expect(200, 200, 200, 200, 200)
LIST = expect(401, 200, 200, 200, 200)  # B gets its own organisation's (empty) answer
DETAIL = expect(401, 404, 200, 200, 200)
ADMIN_LIST = expect(401, 200, 403, 403, 200)
ADMIN_DETAIL = expect(401, 404, 403, 403, 200)
ADMIN_PATCH = expect(401, 404, 403, 403, 200)
ADMIN_DELETE = expect(401, 404, 403, 403, 204)
ADMIN_CREATE = expect(401, 201, 403, 403, 201)
OPERATOR_PATCH = expect(401, 404, 403, 200, 200)
HEALTH = expect(*[(200, 503)] * 5)  # 503 while a check fails (no worker runs here)
PAGE = expect(302, 200, 200, 200, 200)  # the UI's pages: B's shows B's data
PAGE_DETAIL = expect(302, 404, 200, 200, 200)
PUSHED = (200, 400, 415)  # an empty or JSON body: accepted or refused by the receiver, never 5xx

# pattern (as the resolver spells it) -> [(method, url, body, expected status per actor)]
API: dict[str, list[tuple[str, str, Any, Expect]]] = {
    "": [("get", "/", None, expect(302, 200, 200, 200, 200))],
    "metrics": [("get", "/metrics", None, PUBLIC)],
    "api/v1/monitoring/health": [("get", "/api/v1/monitoring/health?scope=live", None, PUBLIC)],
    "api/v1/monitoring/metrics/system": [("get", "/api/v1/monitoring/metrics/system?minutes=5", None, LIST)],
    "api/v1/monitoring/metrics/summary": [("get", "/api/v1/monitoring/metrics/summary?hours=1", None, LIST)],
    "api/v1/monitoring/metrics/api": [("get", "/api/v1/monitoring/metrics/api", None, LIST)],
    "api/v1/monitoring/dashboard/overview": [("get", "/api/v1/monitoring/dashboard/overview", None, LIST)],
    "api/v1/monitoring/query": [
        ("get", "/api/v1/monitoring/query?metric=system_cpu_usage_percent&step=60", None, LIST)
    ],
    "api/v1/monitoring/^hosts$": [("get", "/api/v1/monitoring/hosts", None, LIST)],
    "api/v1/monitoring/^hosts/(?P<pk>[^/.]+)$": [("get", "/api/v1/monitoring/hosts/{host}", None, DETAIL)],
    "api/v1/monitoring/^alerts$": [
        ("get", "/api/v1/monitoring/alerts", None, LIST),
        (
            "post",
            "/api/v1/monitoring/alerts",
            {"name": "manual", "severity": "high", "labels": {"host": "h"}},
            expect(401, 201, 403, 201, 409),  # A's admin: the operator's alert is already open
        ),
    ],
    "api/v1/monitoring/^alerts/history$": [("get", "/api/v1/monitoring/alerts/history", None, LIST)],
    "api/v1/monitoring/^alerts/summary$": [("get", "/api/v1/monitoring/alerts/summary", None, LIST)],
    "api/v1/monitoring/^alerts/(?P<pk>\\d+)$": [("get", "/api/v1/monitoring/alerts/{alert}", None, DETAIL)],
    "api/v1/monitoring/^alerts/(?P<pk>\\d+)/acknowledge$": [
        ("post", "/api/v1/monitoring/alerts/{alert}/acknowledge", {}, OPERATOR_PATCH)
    ],
    "api/v1/monitoring/^alerts/(?P<pk>\\d+)/resolve$": [
        ("post", "/api/v1/monitoring/alerts/{alert_res}/resolve", {}, expect(401, 404, 403, 200, 409))
    ],
    "api/v1/monitoring/^rules$": [
        ("get", "/api/v1/monitoring/rules", None, LIST),
        (
            "post",
            "/api/v1/monitoring/rules",
            {"name": "new rule", "query": {"metric": "system_load1"}, "threshold": 5},
            ADMIN_CREATE,
        ),
    ],
    "api/v1/monitoring/^rules/preview$": [
        (
            "post",
            "/api/v1/monitoring/rules/preview",
            {"name": "p", "query": {"metric": "system_cpu_usage_percent"}, "threshold": 1},
            LIST,
        )
    ],
    "api/v1/monitoring/^rules/(?P<pk>\\d+)$": [
        ("get", "/api/v1/monitoring/rules/{rule}", None, DETAIL),
        ("patch", "/api/v1/monitoring/rules/{rule}", {"threshold": 91}, ADMIN_PATCH),
        ("delete", "/api/v1/monitoring/rules/{rule_del}", None, ADMIN_DELETE),
    ],
    "api/v1/monitoring/^rules/(?P<pk>\\d+)/preview$": [
        ("get", "/api/v1/monitoring/rules/{rule}/preview", None, DETAIL)
    ],
    "api/v1/monitoring/^silences$": [
        ("get", "/api/v1/monitoring/silences", None, LIST),
        (
            "post",
            "/api/v1/monitoring/silences",
            {"matchers": [{"name": "host", "op": "=", "value": "x"}], "ends_at": "2100-01-01T00:00:00Z"},
            expect(401, 201, 403, 201, 201),
        ),
    ],
    "api/v1/monitoring/^silences/(?P<pk>\\d+)$": [
        ("get", "/api/v1/monitoring/silences/{silence}", None, DETAIL),
        ("patch", "/api/v1/monitoring/silences/{silence}", {"comment": "changed"}, OPERATOR_PATCH),
        ("delete", "/api/v1/monitoring/silences/{silence_del}", None, expect(401, 404, 403, 204, 404)),
    ],
    "api/v1/monitoring/^channels$": [
        ("get", "/api/v1/monitoring/channels", None, LIST),
        (
            "post",
            "/api/v1/monitoring/channels",
            {"name": "new channel", "kind": "webhook", "config": {"url": "http://127.0.0.1:9/new"}},
            ADMIN_CREATE,
        ),
    ],
    "api/v1/monitoring/^channels/(?P<pk>\\d+)$": [
        ("get", "/api/v1/monitoring/channels/{channel}", None, DETAIL),
        ("patch", "/api/v1/monitoring/channels/{channel}", {"enabled": False}, ADMIN_PATCH),
        ("delete", "/api/v1/monitoring/channels/{channel_del}", None, ADMIN_DELETE),
    ],
    "api/v1/monitoring/^channels/(?P<pk>\\d+)/test$": [
        # Nothing listens on 127.0.0.1:9: the send fails (502) or, queued, is accepted (202).
        (
            "post",
            "/api/v1/monitoring/channels/{channel}/test",
            {},
            expect(401, 404, 403, 403, (200, 202, 502)),
        )
    ],
    # LLM inference: recording needs the operator role ({} is refused by validation: no Redis needed).
    "api/v1/monitoring/inference": [
        ("post", "/api/v1/monitoring/inference", {}, expect(401, 400, 403, 400, 400))
    ],
    "api/monitoring/dashboard/inference": [
        ("post", "/api/monitoring/dashboard/inference", {}, expect(401, 400, 403, 400, 400))
    ],
    "api/v1/monitoring/models": [("get", "/api/v1/monitoring/models?hours=1", None, LIST)],
    "api/v1/monitoring/models/series": [
        ("get", "/api/v1/monitoring/models/series?figure=requests&hours=1", None, LIST)
    ],
    "api/v1/monitoring/models/daily-cost": [("get", "/api/v1/monitoring/models/daily-cost", None, LIST)],
    "api/v1/logs/search": [("get", "/api/v1/logs/search", None, LIST)],
    "api/v1/logs/stats": [("get", "/api/v1/logs/stats", None, LIST)],
    "api/v1/logs/requests/<str:request_id>": [("get", f"/api/v1/logs/requests/req-{MARKER}", None, DETAIL)],
    "api/v1/^audit/$": [("get", "/api/v1/audit/", None, ADMIN_LIST)],
    "api/v1/^audit/(?P<pk>\\d+)/$": [("get", "/api/v1/audit/{audit}/", None, ADMIN_DETAIL)],
    "api/v1/^tokens/$": [
        ("get", "/api/v1/tokens/", None, ADMIN_LIST),
        ("post", "/api/v1/tokens/", {"name": "ci", "role": "viewer"}, ADMIN_CREATE),
    ],
    "api/v1/^tokens/(?P<pk>\\d+)/$": [
        ("get", "/api/v1/tokens/{token}/", None, ADMIN_DETAIL),
        ("delete", "/api/v1/tokens/{token_del}/", None, ADMIN_DELETE),
    ],
    "api/v1/^members/$": [
        ("get", "/api/v1/members/", None, ADMIN_LIST),
        ("post", "/api/v1/members/", {"user": f"spare-{MARKER}", "role": "viewer"}, ADMIN_CREATE),
    ],
    "api/v1/^members/(?P<pk>\\d+)/$": [
        ("get", "/api/v1/members/{member}/", None, ADMIN_DETAIL),
        ("patch", "/api/v1/members/{member}/", {"role": "viewer"}, ADMIN_PATCH),
        ("delete", "/api/v1/members/{member_del}/", None, ADMIN_DELETE),
    ],
    "api/monitoring/^alerts$": [("get", "/api/monitoring/alerts", None, LIST)],
    "api/monitoring/^alerts/history$": [("get", "/api/monitoring/alerts/history", None, LIST)],
    "api/monitoring/^alerts/summary$": [("get", "/api/monitoring/alerts/summary", None, LIST)],
    "api/monitoring/^alerts/(?P<pk>\\d+)$": [("get", "/api/monitoring/alerts/{alert}", None, DETAIL)],
    "api/monitoring/^alerts/(?P<pk>\\d+)/acknowledge$": [
        ("put", "/api/monitoring/alerts/{alert}/acknowledge", {}, OPERATOR_PATCH)
    ],
    "api/monitoring/^alerts/(?P<pk>\\d+)/resolve$": [
        ("put", "/api/monitoring/alerts/{alert}/resolve", {}, expect(401, 404, 403, 200, 409))
    ],
    # Routing tree and escalation (one root per organisation), the inbound Alertmanager webhook.
    "api/v1/monitoring/^routes$": [
        ("get", "/api/v1/monitoring/routes", None, LIST),
        # A already has its root; B's first root is its own.
        ("post", "/api/v1/monitoring/routes", {"name": "root"}, expect(401, 201, 403, 403, 400)),
        # A child of A's root: B cannot name A's route.
        (
            "post",
            "/api/v1/monitoring/routes",
            {"name": "child", "parent": "{route}", "channel": "{channel}"},
            expect(401, 400, 403, 403, 201),
        ),
    ],
    "api/v1/monitoring/^routes/(?P<pk>\\d+)$": [
        ("get", "/api/v1/monitoring/routes/{route}", None, DETAIL),
        ("patch", "/api/v1/monitoring/routes/{route}", {"group_wait_seconds": 5}, ADMIN_PATCH),
        ("delete", "/api/v1/monitoring/routes/{route_del}", None, ADMIN_DELETE),
    ],
    "api/v1/monitoring/^escalation-policies$": [
        ("get", "/api/v1/monitoring/escalation-policies", None, LIST),
        (
            "post",
            "/api/v1/monitoring/escalation-policies",
            {"name": "pol", "steps": [{"channel": "{channel}", "delay_minutes": 1}]},
            expect(401, 400, 403, 403, 201),  # B cannot name A's channel
        ),
    ],
    "api/v1/monitoring/^escalation-policies/(?P<pk>\\d+)$": [
        ("get", "/api/v1/monitoring/escalation-policies/{policy}", None, DETAIL),
        ("patch", "/api/v1/monitoring/escalation-policies/{policy}", {"description": "d"}, ADMIN_PATCH),
        ("delete", "/api/v1/monitoring/escalation-policies/{policy_del}", None, ADMIN_DELETE),
    ],
    "api/v1/monitoring/alertmanager/webhook": [
        (
            "post",
            "/api/v1/monitoring/alertmanager/webhook",
            {
                "version": "4",
                "status": "firing",
                "alerts": [
                    {"status": "firing", "labels": {"alertname": "am"}, "startsAt": "2026-01-01T00:00:00Z"}
                ],
            },
            expect(401, 200, 403, 200, 200),
        )
    ],
    "api/v1/monitoring/^channels/(?P<pk>\\d+)/test/(?P<notification_id>\\d+)$": [
        ("get", "/api/v1/monitoring/channels/{channel}/test/{test_note}", None, DETAIL)
    ],
    # Enrollments: the organisation's admins only; a host enrolled in A is stored in A.
    "api/v1/monitoring/^enrollments$": [
        ("get", "/api/v1/monitoring/enrollments", None, ADMIN_LIST),
        ("post", "/api/v1/monitoring/enrollments", {"host_name": "new-host"}, ADMIN_CREATE),
    ],
    "api/v1/monitoring/^enrollments/(?P<pk>[^/.]+)$": [
        ("get", "/api/v1/monitoring/enrollments/{enrollment}", None, ADMIN_DETAIL)
    ],
    "api/v1/monitoring/^enrollments/(?P<pk>[^/.]+)/rotate$": [
        ("post", "/api/v1/monitoring/enrollments/{enrollment}/rotate", {}, ADMIN_PATCH)
    ],
    "api/v1/monitoring/^enrollments/(?P<pk>[^/.]+)/revoke$": [
        ("post", "/api/v1/monitoring/enrollments/{enrollment_rev}/revoke", {}, ADMIN_PATCH)
    ],
    # The Prometheus API and federation answer from the caller's organisation's series.
    "prometheus/api/v1/query": [
        ("get", "/prometheus/api/v1/query?query=system_cpu_usage_percent", None, LIST)
    ],
    "prometheus/api/v1/query_range": [
        (
            "get",
            "/prometheus/api/v1/query_range?query=system_cpu_usage_percent&start=1&end=601&step=60",
            None,
            LIST,
        )
    ],
    "prometheus/api/v1/series": [
        ("get", "/prometheus/api/v1/series?match[]=system_cpu_usage_percent", None, LIST)
    ],
    "prometheus/api/v1/labels": [("get", "/prometheus/api/v1/labels", None, LIST)],
    "prometheus/api/v1/label/<str:name>/values": [
        ("get", "/prometheus/api/v1/label/host/values", None, LIST)
    ],
    "prometheus/api/v1/metadata": [("get", "/prometheus/api/v1/metadata", None, LIST)],
    "prometheus/api/v1/status/buildinfo": [("get", "/prometheus/api/v1/status/buildinfo", None, LIST)],
    "federate": [("get", "/federate?match[]=system_cpu_usage_percent", None, LIST)],
    # Pushing data needs the operator role; a JSON body is not remote write's snappy protobuf.
    "prometheus/api/v1/write": [("post", "/prometheus/api/v1/write", {}, expect(401, 400, 403, 400, 400))],
    "otlp/v1/metrics": [("post", "/otlp/v1/metrics", {}, expect(401, PUSHED, 403, PUSHED, PUSHED))],
    "otlp/v1/logs": [("post", "/otlp/v1/logs", {}, expect(401, PUSHED, 403, PUSHED, PUSHED))],
    "otlp/v1/traces": [("post", "/otlp/v1/traces", {}, expect(401, PUSHED, 403, PUSHED, PUSHED))],
    # The seed documents' health and metrics paths: public, like the health endpoint and /metrics.
    "api/v1/monitoring/status": [("get", "/api/v1/monitoring/status?scope=live", None, PUBLIC)],
    "api/health": [("get", "/api/health?scope=live", None, PUBLIC)],
    "api/metrics": [("get", "/api/metrics", None, PUBLIC)],
    "health": [("get", "/health", None, HEALTH)],
    "health/detailed": [("get", "/health/detailed", None, HEALTH)],
    "health/metrics": [("get", "/health/metrics", None, PUBLIC)],
    # The web UI: pages (session login) and their chart data (token or session).
    "hosts/<str:hostname>/": [("get", "/hosts/{hostname}/", None, PAGE_DETAIL)],
    "alerts/": [("get", "/alerts/", None, PAGE)],
    "logs/": [("get", "/logs/", None, PAGE)],
    "requests/<str:request_id>/": [("get", f"/requests/req-{MARKER}/", None, PAGE)],
    "explore/": [("get", "/explore/", None, PAGE)],
    "endpoints/": [("get", "/endpoints/", None, PAGE)],
    "models/": [("get", "/models/", None, PAGE)],
    "rules/new/": [("get", "/rules/new/", None, PAGE)],
    "rules/<int:pk>/": [("get", "/rules/{rule}/", None, PAGE_DETAIL)],
    "login/": [("get", "/login/", None, PUBLIC)],
    "logout/": [("get", "/logout/", None, expect(405, 405, 405, 405, 405))],
    "favicon.ico": [("get", "/favicon.ico", None, expect(302, 302, 302, 302, 302))],
    "ui/api/chart": [("get", "/ui/api/chart?metric=system_cpu_usage_percent&by=host", None, LIST)],
    "ui/api/fleet": [("get", "/ui/api/fleet", None, LIST)],
    "ui/api/metric-names": [("get", "/ui/api/metric-names", None, LIST)],
    "ui/api/labels": [("get", "/ui/api/labels?metric=system_cpu_usage_percent", None, LIST)],
    "ui/api/health": [("get", "/ui/api/health", None, LIST)],
    "ui/api/model-hosts": [("get", "/ui/api/model-hosts", None, LIST)],
    # The schema describes endpoints, never data: public like the login page.
    "api/schema/": [("get", "/api/schema/?format=json", None, PUBLIC)],
    "api/docs/": [("get", "/api/docs/", None, PUBLIC)],
    "api/redoc/": [("get", "/api/redoc/", None, PUBLIC)],
    "api-auth/login/": [("get", "/api-auth/login/", None, PUBLIC)],
    "api-auth/logout/": [("get", "/api-auth/logout/", None, expect(405, 405, 405, 405, 405))],
}

# The admin: the site's own pages, then every registered model's six pages by its kind.
STAFF = expect(302, 200, 200, 200, 200)
ADMIN_SITE: dict[str, list[tuple[str, str, Any, Expect]]] = {
    "admin/": [("get", "/admin/", None, STAFF)],
    "admin/login/": [("get", "/admin/login/", None, expect(200, 302, 302, 302, 302))],
    "admin/logout/": [("get", "/admin/logout/", None, expect(302, 405, 405, 405, 405))],
    "admin/password_change/": [("get", "/admin/password_change/", None, STAFF)],
    "admin/password_change/done/": [("get", "/admin/password_change/done/", None, STAFF)],
    "admin/autocomplete/": [("get", "/admin/autocomplete/", None, expect(302, 403, 403, 403, 403))],
    "admin/jsi18n/": [("get", "/admin/jsi18n/", None, STAFF)],
    "admin/r/<path:content_type_id>/<path:object_id>/": [
        ("get", "/admin/r/1/1/", None, expect(302, 404, 404, 404, 404))
    ],
    "admin/^(?P<app_label>auth|axes|monitoring|alerts|enrollments|orgs|inference)/$": [
        ("get", "/admin/alerts/", None, STAFF)
    ],
    "admin/(?P<url>.*)$": [("get", "/admin/no-such-page/", None, expect(302, 404, 404, 404, 404))],
    "admin/auth/user/<id>/password/": [
        ("get", "/admin/auth/user/{user}/password/", None, expect(302, 403, 403, 403, 403))
    ],
}
# model label -> (object key, role to view, role to add/change/delete, pages refused to everyone)
SUPERUSER_ONLY = "superuser"
ADMIN_MODELS: dict[str, tuple[str, str, str, frozenset[str]]] = {
    "auth/group": ("group", SUPERUSER_ONLY, SUPERUSER_ONLY, frozenset()),
    "auth/user": ("user", SUPERUSER_ONLY, SUPERUSER_ONLY, frozenset()),
    "monitoring/rollupstate": ("rollupstate", SUPERUSER_ONLY, SUPERUSER_ONLY, frozenset()),
    "orgs/organization": ("org", SUPERUSER_ONLY, SUPERUSER_ONLY, frozenset()),
    "axes/accessattempt": ("accessattempt", SUPERUSER_ONLY, SUPERUSER_ONLY, frozenset()),
    "axes/accesslog": ("accesslog", SUPERUSER_ONLY, SUPERUSER_ONLY, frozenset()),
    "axes/accessfailurelog": ("accessfailurelog", SUPERUSER_ONLY, SUPERUSER_ONLY, frozenset()),
    "alerts/route": ("route", "viewer", "admin", frozenset()),
    "alerts/escalationpolicy": ("policy", "viewer", "admin", frozenset()),
    "enrollments/enrollment": ("enrollment", "admin", "admin", frozenset()),
    "monitoring/host": ("host", "viewer", "admin", frozenset()),
    "monitoring/series": ("series", "viewer", "admin", frozenset({"delete"})),
    "alerts/alertrule": ("rule", "viewer", "admin", frozenset()),
    "alerts/alert": ("alert", "viewer", "operator", frozenset()),
    "alerts/silence": ("silence", "viewer", "operator", frozenset()),
    "alerts/channel": ("channel", "viewer", "admin", frozenset()),
    "alerts/notification": ("notification", "viewer", "admin", frozenset()),
    "orgs/membership": ("member", "admin", "admin", frozenset()),
    "orgs/apitoken": ("token", "admin", "admin", frozenset({"add"})),
    "orgs/auditevent": ("audit", "admin", "admin", frozenset({"add", "delete"})),
    # Prices are add-only (history kept): nobody deletes one.
    "inference/modelprice": ("price", "viewer", "admin", frozenset({"delete"})),
    "inference/budget": ("budget", "viewer", "admin", frozenset()),
}
MODEL_PAGES = {
    "": "changelist",
    "add/": "add",
    "<path:object_id>/history/": "history",
    "<path:object_id>/delete/": "delete",
    "<path:object_id>/change/": "change",
    "<path:object_id>/": "view",
}
RANK = {"viewer": 1, "operator": 2, "admin": 3}


def model_page_expectation(page: str, view_role: str, change_role: str, refused: frozenset[str]) -> Expect:
    """Members of A by their role; B's admin may list and add in B but finds none of A's objects."""

    def may(actor: str, role: str) -> bool:
        return role != SUPERUSER_ONLY and RANK[actor] >= RANK[role]

    out: Expect = {"anon": 302}
    for actor in ("viewer", "operator", "admin"):
        if page == "view":
            out[actor] = 302  # redirects to the change page
        elif page in ("changelist", "history", "change"):
            out[actor] = 200 if may(actor, view_role) else 403
        else:  # add, delete
            out[actor] = 200 if may(actor, change_role) and page not in refused else 403
    if view_role == SUPERUSER_ONLY:
        out["b_admin"] = 302 if page == "view" else 403
    elif page in refused:
        out["b_admin"] = 403  # refused before any lookup
    elif page in ("changelist", "add"):
        out["b_admin"] = 200
    else:
        out["b_admin"] = 302  # the object is not in B's list: "does not exist", back to the index
    return out


def admin_cases(key: str) -> list[tuple[str, str, Any, Expect]]:
    if key in ADMIN_SITE:
        return ADMIN_SITE[key]
    for label, (object_key, view_role, change_role, refused) in ADMIN_MODELS.items():
        prefix = f"admin/{label}/"
        if key.startswith(prefix) and key[len(prefix) :] in MODEL_PAGES:
            page = MODEL_PAGES[key[len(prefix) :]]
            url = "/" + prefix + key[len(prefix) :].replace("<path:object_id>", "{" + object_key + "}")
            return [("get", url, None, model_page_expectation(page, view_role, change_role, refused))]
    raise KeyError(key)


def url_patterns() -> list[str]:
    """Every URL pattern of the project, prefixes joined, as the resolver spells them."""

    def walk(patterns: list, prefix: str) -> list[str]:
        out: list[str] = []
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                out += walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                out.append(prefix + str(pattern.pattern))
        return out

    return walk(get_resolver().url_patterns, "")


def cases_for(key: str) -> list[tuple[str, str, Any, Expect]]:
    return API[key] if key in API else admin_cases(key)


def test_every_url_pattern_has_an_expectation():
    missing = []
    for key in url_patterns():
        try:
            cases_for(key)
        except KeyError:
            missing.append(key)
    assert missing == [], f"add these URL patterns to tests/orgs/test_every_url.py: {missing}"


def _sent_values(url: str, body: Any) -> list[str]:
    values = [part for part in url.split("/") if MARKER in part]
    if isinstance(body, dict):
        values += [v for v in body.values() if isinstance(v, str) and MARKER in v]
    return values


UI_PAGES = (
    "/admin/",
    "/hosts/",
    "/alerts/",
    "/logs/",
    "/requests/",
    "/explore/",
    "/endpoints/",
    "/models/",
    "/rules/",
)


def _filled(body: Any, ids: dict[str, Any]) -> Any:
    """A body's "{name}" values replaced by the world's object ids (e.g. a parent route)."""
    if isinstance(body, dict):
        return {k: _filled(v, ids) for k, v in body.items()}
    if isinstance(body, list):
        return [_filled(v, ids) for v in body]
    if isinstance(body, str) and body.startswith("{") and body.endswith("}") and body[1:-1] in ids:
        return ids[body[1:-1]]
    return body


def _request(world: World, actor: str, method: str, url: str, body: Any):
    if url.startswith(UI_PAGES) or url in ("/", "/login/", "/logout/", "/favicon.ico"):
        return getattr(world.web[actor], method)(url)
    client = world.api[actor]
    if body is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, _filled(body, world.ids), format="json")


def test_every_url_as_every_role_of_a_and_as_b(world: World):
    keys = url_patterns()
    failures: list[str] = []
    leaks: list[str] = []
    # Deletions last, so every other case still finds its object.
    cases = [(key, case) for key in keys for case in cases_for(key)]
    cases.sort(key=lambda item: item[1][0] == "delete")
    for key, (method, template, body, expected) in cases:
        url = template.format(**world.ids)
        for actor in ACTORS:
            response = _request(world, actor, method, url, body)
            want = expected[actor]
            if response.status_code not in (want if isinstance(want, tuple) else (want,)):
                failures.append(
                    f"{actor} {method.upper()} {url} [{key}]: {response.status_code}, expected {want}"
                )
            content = b"" if response.streaming else response.content
            for sent in _sent_values(url, body):  # what B sent may come back (e.g. a 404 naming it)
                content = content.replace(sent.encode(), b"")
            if actor == "b_admin" and (MARKER.encode() in content or MARKER.lower().encode() in content):
                leaks.append(f"{method.upper()} {url}")
    assert failures == [], "\n".join(failures)
    assert leaks == [], f"responses to B hold A's data: {leaks}"


@pytest.mark.parametrize("key", ["api/v1/monitoring/^rules/(?P<pk>\\d+)$"])
def test_the_tables_use_the_resolver_spelling(key):
    assert key in url_patterns()
