"""fleetwatch-manage import_logs FILE: imports JSONFormatter lines, reports rejected ones."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from shared.jsonlog import JSONFormatter
from tests.logs.conftest import fetch_all


def formatter_lines(count: int) -> list[str]:
    """Lines written by the project's JSONFormatter, as the seed's services write them."""
    formatter = JSONFormatter()
    lines = []
    for i in range(count):
        rec = logging.LogRecord("api.requests", logging.INFO, "mw.py", 85, "Request %d completed", (i,), None)
        rec.request_id = f"req-{i}"
        rec.status_code = 200
        rec.created = time.time() - 60
        lines.append(formatter.format(rec))
    return lines


def test_import_reports_imported_and_rejected_lines(partitions, tmp_path: Path):
    old = json.dumps({"timestamp": "2001-01-01T00:00:00Z", "level": "INFO", "message": "old"})
    lines = [
        *formatter_lines(3),
        "{not json",
        "",
        json.dumps({"level": "INFO", "message": "no time"}),
        old,
        json.dumps({"timestamp": "2026-13-01", "level": "INFO", "message": "bad month"}),
    ]
    path = tmp_path / "app.log"
    path.write_text("\n".join(lines) + "\n")
    out, err = StringIO(), StringIO()
    call_command("import_logs", str(path), host="app-host", service="llm-platform", stdout=out, stderr=err)
    assert "imported 3 lines, rejected 4" in out.getvalue()
    report = err.getvalue().splitlines()
    assert report[0].startswith("line 4: rejected: not valid JSON")
    assert (
        report[1]
        == "line 6: rejected: missing timestamp (looked for timestamp, ts, time, @timestamp, asctime)"
    )
    assert report[2].startswith("line 7: rejected: timestamp 2001-01-01T00:00:00+00:00 is older than")
    assert report[3].startswith("line 8: rejected: timestamp '2026-13-01' is not ISO 8601")
    rows = fetch_all(
        "SELECT host, service, logger, request_id, message, attrs->>'status_code' FROM logs_entry "
        "ORDER BY request_id"
    )
    assert rows[0] == ("app-host", "llm-platform", "api.requests", "req-0", "Request 0 completed", "200")
    assert len(rows) == 3


def test_missing_file_is_a_command_error(partitions, tmp_path: Path):
    with pytest.raises(CommandError, match="cannot read"):
        call_command("import_logs", str(tmp_path / "absent.log"))


@pytest.mark.django_db(transaction=True)
def test_fleetwatch_manage_import_logs_runs_as_a_process(tmp_path: Path, settings):
    """The real console script against the test database."""
    from django.db import connection

    from collector_server.monitoring import partitions as parts

    parts.forget_cache()
    path = tmp_path / "app.log"
    path.write_text("\n".join(formatter_lines(5)) + "\n")
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env = {"DATABASE_URL": url, "DEBUG": "true", "PATH": "/usr/bin:/bin"}
    script = Path(sys.executable).parent / "fleetwatch-manage"
    try:
        result = subprocess.run(
            [str(script), "import_logs", str(path), "--host", "proc-host"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "imported 5 lines, rejected 0" in result.stdout
        assert fetch_all("SELECT count(*) FROM logs_entry WHERE host = 'proc-host'")[0][0] == 5
    finally:
        with connection.cursor() as cursor:  # committed rows outlive the test: remove them
            cursor.execute("DELETE FROM logs_entry WHERE host = 'proc-host'")
        parts.forget_cache()


def test_with_several_organisations_the_import_needs_organization(partitions, tmp_path: Path):
    from tests.members import organization

    acme = organization("acme")
    organization("globex")
    path = tmp_path / "app.log"
    path.write_text("\n".join(formatter_lines(2)) + "\n")
    with pytest.raises(CommandError) as refused:
        call_command("import_logs", str(path), host="app-host")
    message = str(refused.value)
    assert "--organization" in message
    assert "acme, default, globex" in message
    assert fetch_all("SELECT count(*) FROM logs_entry")[0][0] == 0

    with pytest.raises(
        CommandError, match=r"no organisation 'nope' \(--organization\).*acme, default, globex"
    ):
        call_command("import_logs", str(path), organization="nope")

    out = StringIO()
    call_command("import_logs", str(path), host="app-host", organization="acme", stdout=out)
    assert "imported 2 lines, rejected 0" in out.getvalue()
    assert fetch_all("SELECT DISTINCT organization_id FROM logs_entry") == [(acme.pk,)]


def test_imported_lines_are_searchable_by_their_organisation_only(partitions, tmp_path: Path):
    from django.contrib.auth.models import User
    from rest_framework.test import APIClient

    from tests.members import issue_token, member, organization

    organization("acme")
    path = tmp_path / "app.log"
    path.write_text("\n".join(formatter_lines(1)) + "\n")
    call_command("import_logs", str(path), host="acme-box", organization="acme", stdout=StringIO())
    acme_user = member(User.objects.create_user("acme-viewer"), "viewer", "acme")
    default_user = member(User.objects.create_user("default-viewer"), "viewer")
    found = {}
    for name, user, org in (("acme", acme_user, "acme"), ("default", default_user, None)):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(user, 'viewer', org)}")
        response = client.get("/api/v1/logs/search", {"host": "acme-box"})
        assert response.status_code == 200, response.content
        found[name] = response.content.decode().count("Request 0 completed")
    assert found["acme"] >= 1
    assert found["default"] == 0
