"""Fixtures of the Prometheus API tests: a token client and series with samples written directly."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from django.db import connection
from rest_framework.test import APIClient

from collector_server.monitoring.models import Host, Series
from tests.members import issue_token, member
from tests.server.conftest import django_db_setup  # noqa: F401  (partitions of the last two weeks)


@pytest.fixture
def api(db) -> APIClient:
    from django.contrib.auth.models import User

    # An operator: reads, and pushes (remote write, OTLP) into its organisation.
    user = User.objects.create_user("prom-operator", password="operator-password-1")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issue_token(member(user, 'operator'), 'operator')}")
    return client


@pytest.fixture
def now_s() -> int:
    """A recent whole minute, so sample times and steps line up predictably."""
    return int(time.time()) // 60 * 60 - 3600


class Store:
    """Write series and samples straight into the tables (the ingest path has its own tests)."""

    def __init__(self) -> None:
        self.hosts: dict[str, Host] = {}

    def host(self, name: str) -> Host:
        if name not in self.hosts:
            self.hosts[name] = Host.objects.create(agent_id=f"agent-{name}", hostname=name)
        return self.hosts[name]

    def series(self, name: str, kind: str = "gauge", **labels: str) -> Series:
        host = self.host(labels.setdefault("host", "web-1"))
        key = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        return Series.objects.create(name=name, kind=kind, labels=labels, labels_key=key, host=host)

    def samples(self, series: Series, points: list[tuple[float, float]]) -> None:
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO monitoring_sample (series_id, ts, value) VALUES (%s, %s, %s)",
                [(series.id, datetime.fromtimestamp(t, UTC), v) for t, v in points],
            )


@pytest.fixture
def store(db) -> Store:
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE monitoring_sample, monitoring_rollup_1m, monitoring_rollup_5m, monitoring_rollup_1h, "
            "monitoring_block_1m, monitoring_block_5m, monitoring_block_1h"
        )
    return Store()


@pytest.fixture(autouse=True)
def _no_results_cache(settings):
    """The PromQL results cache writes to Redis: only tests that use a test Redis turn it on."""
    settings.PROMQL_RESULTS_CACHE = False
