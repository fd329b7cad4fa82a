"""A Python client generated from /api/schema/ (openapi-python-client) works against a live server.

It lists alerts, searches logs and runs a query; its typed models parse the responses, which
they can only do if the schema says what the server returns.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from collector_server.alerts.models import Alert
from tests.members import issue_token, member

GENERATOR = Path(sys.executable).parent / "openapi-python-client"


@pytest.fixture
def generated_client(tmp_path, db):
    schema = tmp_path / "schema.json"
    schema.write_bytes(APIClient().get("/api/schema/", {"format": "json"}).content)
    config = tmp_path / "config.yml"
    config.write_text("post_hooks: []\npackage_name_override: fwclient\n")
    subprocess.run(
        [
            *(str(GENERATOR), "generate", "--path", str(schema), "--output-path", str(tmp_path / "fwclient")),
            *("--meta", "none", "--config", str(config)),
        ],
        check=True,
        capture_output=True,
    )
    sys.path.insert(0, str(tmp_path))
    try:
        yield lambda name: importlib.import_module(f"fwclient{name}")
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == "fwclient" or m.startswith("fwclient.")]:
            del sys.modules[name]


@pytest.mark.django_db(transaction=True)
def test_generated_client_lists_alerts_searches_logs_and_runs_a_query(
    generated_client, live_server, django_user_model, partitions
):
    from tests.alerting.conftest import Metrics

    user = django_user_model.objects.create_user("client-bot", password="pw-client-bot-1")
    token = issue_token(member(user, "admin"), "admin")
    Alert.objects.create(
        name="High CPU Usage",
        labels={"alertname": "High CPU Usage", "host": "web-1", "severity": "high"},
        labels_key="host=web-1",
        severity="high",
        state="firing",
        value=91.0,
    )
    now = datetime.now(UTC).replace(microsecond=0)
    Metrics().gauge("system_cpu_usage_percent", now, 42.0, host="web-1")

    client = generated_client("").AuthenticatedClient(base_url=live_server.url, token=token, prefix="Token")
    api = ".api.v1."
    alerts = generated_client(api + "v1_monitoring_alerts_list").sync(client=client)
    assert type(alerts).__name__ == "AlertList", alerts
    assert alerts.success and alerts.count == 1 and alerts.data[0].name == "High CPU Usage"
    assert alerts.data[0].labels["host"] == "web-1"

    logs = generated_client(api + "v1_logs_search_retrieve").sync(client=client, q="nothing-matches")
    assert type(logs).__name__ == "LogSearchResult", logs
    assert logs.success and logs.count == 0 and logs.data == []

    result = generated_client(api + "v1_monitoring_query_retrieve").sync(
        client=client, metric="system_cpu_usage_percent", match=["host=web-1"], step="1m"
    )
    assert type(result).__name__ == "QueryResult", result
    [series] = result.data.series
    assert series.labels["host"] == "web-1" and series.points[-1][1] == 42.0

    refused = generated_client(api + "v1_monitoring_query_retrieve").sync(client=client, metric="")
    assert type(refused).__name__ == "Error" and refused.success is False and "metric" in refused.error
