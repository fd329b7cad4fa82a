"""Server hardening: login throttling, offline API docs, start-up refusals, statement timeouts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.contrib.staticfiles import finders
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("login_url", ["/admin/login/", "/api-auth/login/"])
def test_logins_are_throttled_after_repeated_failures(settings, login_url):
    settings.AXES_FAILURE_LIMIT = 5
    User.objects.create_superuser("admin", "admin@example.com", "the-right-password")
    client = Client()
    for _ in range(4):
        wrong = client.post(login_url, {"username": "admin", "password": "wrong", "next": "/"})
        assert wrong.status_code == 200  # the form again, not a session
    fifth = client.post(login_url, {"username": "admin", "password": "wrong", "next": "/"})
    assert fifth.status_code == 429  # the limit reached: locked out
    locked = client.post(login_url, {"username": "admin", "password": "the-right-password", "next": "/"})
    assert locked.status_code == 429  # even the right password, until the cool-off has passed
    assert "_auth_user_id" not in client.session


def test_a_right_password_before_the_limit_logs_in_and_resets(settings):
    settings.AXES_FAILURE_LIMIT = 3
    User.objects.create_superuser("admin", "admin@example.com", "the-right-password")
    client = Client()
    client.post("/admin/login/", {"username": "admin", "password": "wrong"})
    response = client.post("/admin/login/", {"username": "admin", "password": "the-right-password"})
    assert response.status_code == 302 and "_auth_user_id" in client.session


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_api_docs_render_from_the_package_with_no_external_url(client, path):
    response = client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    assert not re.search(r"(?:src|href)\s*=\s*[\"'](?:https?:)?//", html), "an asset from another host"
    assert "cdn" not in html.lower()
    assets = re.findall(r"(?:src|href)\s*=\s*[\"'](/static/[^\"'?]+)", html)
    assert assets, "the page references its scripts under /static/"
    for asset in assets:
        assert finders.find(asset.removeprefix("/static/")), f"{asset} is not shipped"


def settings_process(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DJANGO_SETTINGS_MODULE": "collector_server.settings",
    }
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_allowed_hosts_is_required_when_debug_is_off():
    result = settings_process({"SECRET_KEY": "k" * 50})
    assert result.returncode != 0
    assert "ImproperlyConfigured: ALLOWED_HOSTS must be set" in result.stderr
    assert settings_process({"SECRET_KEY": "k" * 50, "DEBUG": "true"}).returncode == 0


def env_example() -> dict[str, str]:
    pairs = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            pairs[name] = value
    return pairs


def test_env_example_placeholders_stop_start_up_naming_the_variable():
    example = env_example()
    assert "change-me" in example["SECRET_KEY"]
    result = settings_process({**example, "DATABASE_URL": "postgres://fleetwatch@db/fleetwatch"})
    assert result.returncode != 0
    named = re.search(r"ImproperlyConfigured: (\w+) still holds the placeholder 'change-me'", result.stderr)
    assert named and "change-me" in example[named.group(1)]


def test_a_placeholder_in_a_secret_file_is_refused_too(tmp_path):
    secret = tmp_path / "secret_key"
    secret.write_text("change-me-to-a-long-random-string\n")
    result = settings_process({"SECRET_KEY_FILE": str(secret), "ALLOWED_HOSTS": "x"})
    assert "ImproperlyConfigured: SECRET_KEY still holds the placeholder" in result.stderr


def test_a_bad_proxy_ssl_header_is_named():
    result = settings_process(
        {"SECRET_KEY": "k" * 50, "ALLOWED_HOSTS": "x", "SECURE_PROXY_SSL_HEADER": "X Bad"}
    )
    assert "ImproperlyConfigured: SECURE_PROXY_SSL_HEADER='X Bad'" in result.stderr


def test_proxy_ssl_header_is_read_as_djangos_pair():
    from shared.config import proxy_ssl_header

    assert proxy_ssl_header("X-Forwarded-Proto") == ("HTTP_X_FORWARDED_PROTO", "https")
    assert proxy_ssl_header("X-Forwarded-Ssl: on") == ("HTTP_X_FORWARDED_SSL", "on")


def test_a_slow_user_query_is_cancelled_by_the_statement_timeout(settings, monkeypatch):
    """The query API, rule preview and log search run under QUERY_TIMEOUT_MS; a timeout is a 400."""
    from django.db import connection
    from rest_framework.test import APIClient

    from collector_server.logs import search
    from collector_server.monitoring import query

    def slow(*args, **kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(5)")

    settings.QUERY_TIMEOUT_MS = 100
    monkeypatch.setattr(query, "run_query", slow)
    monkeypatch.setattr(search, "build_sql", lambda *a, **k: ("SELECT pg_sleep(5)", []))
    # A pattern search starts with its window walk (logs/search.py, sparse searches).
    monkeypatch.setattr(search, "build_window_sql", lambda *a, **k: ("SELECT pg_sleep(5)", []))
    api = APIClient()
    api.force_authenticate(User.objects.create_superuser("root", "r@example.com", "pw-root-123"))
    response = api.get("/api/v1/monitoring/query", {"metric": "cpu"})
    assert response.status_code == 400
    assert "statement timeout of 100 ms (QUERY_TIMEOUT_MS)" in response.json()["error"]
    search_response = api.get("/api/v1/logs/search", {"pattern": "x"})  # its own answer to a timeout
    assert "took too long" in search_response.json()["error"]


def test_admin_credentials_file_is_created_private_never_chmod_after(tmp_path, monkeypatch):
    from collector_server.localstack import write_private

    def no_chmod(*args, **kwargs):
        raise AssertionError("permissions must be set when the file is created")

    monkeypatch.setattr(os, "chmod", no_chmod)
    monkeypatch.setattr(Path, "chmod", no_chmod)
    old_umask = os.umask(0)  # even with a permissive umask
    try:
        target = tmp_path / "admin.json"
        target.write_text("old")
        write_private(target, '{"admin user": "admin"}')
    finally:
        os.umask(old_umask)
    assert target.stat().st_mode & 0o777 == 0o600
    assert target.read_text() == '{"admin user": "admin"}'
    assert [p.name for p in tmp_path.iterdir()] == ["admin.json"]  # no temporary file left
