"""Every URL an anonymous caller can reach, with two organisations' data present: no response body
names either organisation, its hosts, agents, rules, channels, alerts or users.

The URLs come from the URL resolver through tests/orgs/test_every_url.py's tables (so an endpoint
added later is walked too), plus the health and metrics paths with their default (widest) scope.
A's names carry MARKER (tests/orgs/conftest.py); B's here carry B_MARKER.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone

from collector_server.alerts.models import Alert, AlertRule, Channel, Notification
from collector_server.monitoring import health
from collector_server.monitoring.models import Host
from shared import host_limits
from tests.members import member
from tests.orgs.conftest import MARKER, ORG_A, ORG_B, World
from tests.orgs.test_every_url import _filled, _sent_values, cases_for, url_patterns

B_MARKER = "yyByy"
# The widest scope of every anonymous path (the tables ask some for scope=live).
EXTRA = [
    ("get", "/metrics"),
    ("get", "/api/metrics"),
    ("get", "/api/v1/monitoring/health"),
    ("get", "/api/v1/monitoring/health?scope=server"),
    ("get", "/api/v1/monitoring/status"),
    ("get", "/api/health"),
    ("get", "/health"),
    ("get", "/health/detailed"),
    ("get", "/health/metrics"),
    ("get", '/federate?match[]={{__name__=~".+"}}'),
    ("get", "/prometheus/api/v1/label/host/values"),
    ("get", "/prometheus/api/v1/labels"),
    ("get", "/ui/api/fleet"),
    ("get", "/ui/api/health"),
]


def _b_data() -> None:
    """B's own hosts, rule, channel, alert, notification and member, every name with B_MARKER."""
    from tests.members import organization

    org_b = organization(ORG_B)
    Host.objects.create(
        organization=org_b,
        agent_id=f"agent-{B_MARKER}",
        hostname=f"host-{B_MARKER}",
        last_seen=timezone.now(),
    )
    rule = AlertRule.objects.create(
        organization=org_b,
        name=f"rule-{B_MARKER}",
        query_type="metric",
        query={"metric": "system_load1", "aggregation": "avg", "window": 300},
        threshold=1,
    )
    channel = Channel.objects.create(
        organization=org_b, name=f"chan-{B_MARKER}", kind="webhook", config={"url": "http://127.0.0.1:9/b"}
    )
    Notification.objects.create(channel=channel, idempotency_key=f"n-{B_MARKER}", payload={"m": B_MARKER})
    Alert.objects.create(
        organization=org_b,
        rule=rule,
        name=f"alert-{B_MARKER}",
        labels={"host": f"host-{B_MARKER}"},
        labels_key=f"host=host-{B_MARKER}",
        severity="critical",
        state=Alert.FIRING,
        value=3.0,
        fired_at=timezone.now(),
    )
    member(User.objects.create_user(f"user-{B_MARKER}"), "viewer", ORG_B)


def _refusals(redis_client: Any) -> None:
    """Per-host limit refusals of a host of each organisation, kept in Redis."""
    pipe = redis_client.pipeline()
    host_limits.add(
        pipe,
        {
            (f"agent-{MARKER}", f"host-{MARKER}"): Counter({host_limits.SERIES_PER_HOST: 2}),
            (f"agent-{B_MARKER}", f"host-{B_MARKER}"): Counter({host_limits.LOG_ATTRS_BYTES: 1}),
        },
    )
    pipe.execute()


def _body(response: Any) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def _names(body: bytes) -> list[str]:
    text = body.decode("utf-8", "replace").lower()
    return [name for name in (MARKER.lower(), B_MARKER.lower(), ORG_A, ORG_B) if name in text]


def test_no_anonymous_response_names_a_tenant(world: World, redis_client):
    health._client.cache_clear()
    _b_data()
    _refusals(redis_client)
    anon_api, anon_web = world.api["anon"], world.web["anon"]
    leaks: list[str] = []
    seen = 0
    cases = [case for key in url_patterns() for case in cases_for(key)]
    for method, template, body, _expected in cases + [(m, u, None, None) for m, u in EXTRA]:
        url = template.format(**world.ids)
        for client in (anon_api, anon_web):
            if body is None:
                response = getattr(client, method)(url)
            elif client is anon_api:
                response = getattr(client, method)(url, _filled(body, world.ids), format="json")
            else:
                response = getattr(client, method)(
                    url, _filled(body, world.ids), content_type="application/json"
                )
            # 503: a health check fails (no worker runs here); any other 5xx is a bug.
            assert response.status_code < 500 or response.status_code == 503, (
                method,
                url,
                response.status_code,
            )
            content = _body(response)
            for sent in _sent_values(url, body):  # what the caller sent may come back (a 404 naming it)
                content = content.replace(sent.encode(), b"")
            if found := _names(content):
                leaks.append(f"{method.upper()} {url} ({response.status_code}): {found}")
            seen += 1
    health._client.cache_clear()
    assert seen > 150  # every pattern of the project, twice
    assert leaks == [], "anonymous responses name a tenant:\n" + "\n".join(leaks)


def test_the_walk_would_see_a_tenants_name(world: World, redis_client):
    """The check itself: A's admin's /metrics (a token) holds both markers' organisations' own data."""
    health._client.cache_clear()
    _refusals(redis_client)
    content = _body(world.api["admin"].get("/metrics"))
    health._client.cache_clear()
    assert MARKER.lower() in _names(content)
    assert B_MARKER.lower() not in _names(content)
