"""Authentication, the OpenAPI schema, the browsable API, the dashboard page and the admin pages."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from drf_spectacular.drainage import GENERATOR_STATS

from collector_server.monitoring.models import IngestedBatch
from tests.server.conftest import insert_samples, make_host, make_series

PROTECTED = [
    "/api/v1/monitoring/metrics/system",
    "/api/v1/monitoring/metrics/summary",
    "/api/v1/monitoring/dashboard/overview",
    "/api/v1/monitoring/hosts",
    "/api/v1/monitoring/query?metric=system_load1",
]
MY_PATHS = [
    "/api/v1/monitoring/health",
    "/api/v1/monitoring/metrics/system",
    "/api/v1/monitoring/metrics/summary",
    "/api/v1/monitoring/dashboard/overview",
    "/api/v1/monitoring/hosts",
    "/api/v1/monitoring/hosts/{id}",
    "/api/v1/monitoring/query",
]


@pytest.mark.parametrize("path", PROTECTED)
def test_endpoint_without_credentials_is_401(anonymous, db, path):
    response = anonymous.get(path)
    assert response.status_code == 401
    assert response.json()["success"] is False


@pytest.mark.parametrize("path", PROTECTED)
def test_endpoint_with_a_wrong_token_is_401(anonymous, db, path):
    anonymous.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert anonymous.get(path).status_code == 401


def test_session_login_reaches_the_api(db, viewer):
    client = Client()
    client.force_login(viewer)
    response = client.get("/api/v1/monitoring/hosts")
    assert response.status_code == 200
    assert response.json()["success"] is True


def test_browsable_api_renders_html_for_a_logged_in_user(db, viewer):
    client = Client()
    client.force_login(viewer)
    response = client.get("/api/v1/monitoring/hosts", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"Host List" in response.content


def test_schema_lists_every_monitoring_path_without_generator_errors(api):
    GENERATOR_STATS.reset()
    response = api.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    for path in MY_PATHS:
        assert path in schema["paths"], path
    ours = [
        message
        for message in [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache]
        if "monitoring/api" in message
    ]
    assert ours == []
    query_params = {p["name"] for p in schema["paths"]["/api/v1/monitoring/query"]["get"]["parameters"]}
    assert {"metric", "match[]", "start", "end", "step", "agg", "by"} <= query_params


def test_fleet_page_redirects_anonymous_users_to_the_login_page(db):
    response = Client().get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/")


def test_fleet_page_renders_for_a_logged_in_user_with_csrf_cookie(db, viewer):
    client = Client()
    client.force_login(viewer)
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="fleet"' in html
    assert "ui/fleet.js" in html and "ui/core.js" in html
    assert 'data-refresh-seconds="30"' in html
    assert "csrftoken" in response.cookies


@pytest.fixture
def admin_client(db):
    user = User.objects.create_superuser("admin", "admin@example.com", "admin-password-1")
    client = Client()
    client.force_login(user)
    return client


def test_admin_host_and_series_lists_and_series_page_shows_recent_samples(admin_client, db):
    host = make_host("web-1")
    series = make_series(host, "system_load1")
    insert_samples(series, [(timezone.now(), 4.25)])
    IngestedBatch.objects.create(agent_id=host.agent_id, epoch=1, seq=98765, kind="metrics", rows=12)
    hosts = admin_client.get("/admin/monitoring/host/?up=1")
    assert hosts.status_code == 200
    assert b"web-1" in hosts.content
    listing = admin_client.get("/admin/monitoring/series/?q=system_load1")
    assert listing.status_code == 200
    assert b"system_load1" in listing.content
    page = admin_client.get(f"/admin/monitoring/series/{series.id}/change/")
    assert page.status_code == 200
    assert b"Latest raw samples" in page.content
    assert b"4.25" in page.content
    assert b"Latest 1-hour rollups" in page.content
    host_page = admin_client.get(f"/admin/monitoring/host/{host.id}/change/")
    assert host_page.status_code == 200
    assert b"Latest ingested batches" in host_page.content
    assert b"98765" in host_page.content


def test_admin_rollup_state_is_read_only(admin_client):
    assert admin_client.get("/admin/monitoring/rollupstate/").status_code == 200
    assert admin_client.get("/admin/monitoring/rollupstate/add/").status_code == 403
