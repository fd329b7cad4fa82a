"""Browser tests: one real stack per module, one headless Debian chromium per module.

Playwright drives /usr/bin/chromium (apt package ``chromium``; .ci/run installs it when
missing); it never downloads a browser of its own. Screenshots go to the test's output
directory (``ui_output``), one per page.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_lib

from collector_server.localstack import Stack
from tests.e2e.conftest import free_port
from tests.members import member

CHROMIUM = os.environ.get("FLEETWATCH_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "ui-test-password"
UNMANAGED_TABLES = ("monitoring_sample", "monitoring_rollup_1m", "monitoring_rollup_1h", "logs_entry")


@pytest.fixture(scope="module")
def browser():
    """A headless Debian chromium shared by the tests of a module.

    Module-scoped: Playwright's sync API keeps an event loop running in this thread while it
    lives, which later tests calling asyncio.run() (tests/sdk) must not inherit.
    """
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    # While the loop runs, the tests' own ORM calls stay synchronous: tell Django so, then undo it.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
            )
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="module")
def ui_output(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ui-screenshots")


@pytest.fixture(scope="module")
def ui_stack(django_db_setup, django_db_blocker, tmp_path_factory, redis_url) -> Iterator[Stack]:
    """Server, worker, scheduler and agent on the test database, with an operator and a viewer."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, connections

    from collector_server.monitoring import partitions

    var = tmp_path_factory.mktemp("ui-stack")
    client = redis_lib.Redis.from_url(redis_url)
    client.flushdb()
    prefix = f"fwui-{uuid.uuid4().hex[:8]}"
    with django_db_blocker.unblock():
        partitions.forget_cache()
        partitions.ensure_ahead(days_ahead=2)
        users = get_user_model().objects
        member(users.create_user("operator", password=PASSWORD), "operator")
        member(users.create_user("viewer", password=PASSWORD), "viewer")
        member(users.create_user("rule-admin", password=PASSWORD), "admin")  # rules are admins' to edit
        db = connection.settings_dict
    env = dict(
        os.environ,
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        REDIS_URL=redis_url,
        FLEETWATCH_STREAM_PREFIX=prefix,
        DEBUG="true",
        LOG_FORMAT="text",
        FLEETWATCH_AGENT_STATE_DIR=str(var / "agent"),
        FLEETWATCH_AGENT_SOCKET=str(var / "agent.sock"),
        INGEST_JOB_SECONDS="5",
    )
    stack = Stack(var=var, env=env, port=free_port(), agent_interval=1.0)
    stack.start()
    try:
        status, body = stack.wait_http("/api/v1/monitoring/health", timeout=120, ok=(200,))
        assert status == 200, (body, _logs(stack))
        with django_db_blocker.unblock():
            wait_for_metrics(stack)
        yield stack
    finally:
        stack.stop()
        client.flushdb()
        client.close()
        with django_db_blocker.unblock():
            # flush empties the managed tables; the partitioned ones are unmanaged, empty them too
            # so the records of this module never reach the next one.
            call_command("flush", interactive=False, verbosity=0)
            with connection.cursor() as cursor:
                cursor.execute(f"TRUNCATE {', '.join(UNMANAGED_TABLES)}")
            partitions.forget_cache()
            # Opened while Playwright's loop ran: close it here, where it can be found.
            connections.close_all()


def wait_for_metrics(stack: Stack, timeout: float = 120.0) -> None:
    """Wait until this host's CPU series has a few samples (the agent reports every second)."""
    from django.db import connection

    deadline = time.time() + timeout
    while time.time() < deadline:
        with connection.cursor() as cursor:
            if _samples(cursor) >= 3:
                return
        time.sleep(0.5)
    raise AssertionError(f"no metrics reached the database: {_logs(stack)}")


def _samples(cursor) -> int:
    cursor.execute(
        "SELECT count(*) FROM monitoring_sample s JOIN monitoring_series r ON r.id = s.series_id "
        "WHERE r.name = 'system_cpu_usage_percent' AND r.labels ->> 'host' = %s",
        [socket.gethostname()],
    )
    return cursor.fetchone()[0]


def _logs(stack: Stack) -> dict[str, str]:
    return {p.name: p.read_text()[-1500:] for p in (stack.var / "log").glob("*.log")}


def login(browser, stack: Stack, username: str, **context_options):
    """Return a browser context logged in as `username` through the admin login form."""
    context = browser.new_context(**context_options)
    page = context.new_page()
    page.goto(f"http://127.0.0.1:{stack.port}/login/?next=/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"http://127.0.0.1:{stack.port}/")
    page.close()
    return context
