"""The seed documents' health and metrics paths: seed 000's status, seed 004's /api/*, seed 003's /health*."""

from __future__ import annotations

import pytest

from tests.server.test_health import health_client, live_pipeline  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


def test_status_and_api_health_are_the_health_endpoint(anonymous, live_pipeline):  # noqa: F811
    reference = anonymous.get("/api/v1/monitoring/health").json()
    for path in ("/api/v1/monitoring/status", "/api/health"):
        response = anonymous.get(path)
        body = response.json()
        assert response.status_code == 200, (path, body)
        assert set(body) == set(reference) and set(body["services"]) == set(reference["services"])
        assert body["status"] == "healthy"


def test_api_health_says_503_naming_the_failing_check(anonymous, health_client):  # noqa: F811
    response = anonymous.get("/api/health")
    assert response.status_code == 503 and "workers" in response.json()["failing"]


def test_api_metrics_is_the_prometheus_endpoint(anonymous, health_client):  # noqa: F811
    response = anonymous.get("/api/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert b'fleetwatch_up{component="redis"} 1' in response.content


def test_seed003_health_has_the_seed_shape(anonymous, live_pipeline):  # noqa: F811
    basic = anonymous.get("/health")
    body = basic.json()
    assert basic.status_code == 200, body
    assert set(body) == {"status", "message", "timestamp", "uptime_seconds", "checks"}
    assert body["status"] == "healthy" and body["message"] == "All systems operational"
    assert [c["name"] for c in body["checks"]] == ["database", "redis"]
    for check in body["checks"]:
        assert set(check) == {"name", "status", "message", "duration_ms", "details"}
        assert check["status"] == "healthy" and check["duration_ms"] >= 0
    detailed = anonymous.get("/health/detailed").json()
    names = [c["name"] for c in detailed["checks"]]
    assert names == ["database", "redis", "workers", "scheduler", "streams", "agent_credentials"]


def test_seed003_detailed_health_names_what_fails(anonymous, health_client):  # noqa: F811
    response = anonymous.get("/health/detailed")
    body = response.json()
    assert response.status_code == 503 and body["status"] == "unhealthy"
    assert "workers" in body["message"]
    workers = next(c for c in body["checks"] if c["name"] == "workers")
    assert workers["status"] == "unhealthy" and "no RQ worker" in workers["message"]
    assert anonymous.get("/health").status_code == 200  # the server itself is fine


def test_seed003_health_metrics_are_prometheus_gauges(anonymous, live_pipeline):  # noqa: F811
    response = anonymous.get("/health/metrics")
    text = response.content.decode()
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    assert 'fleetwatch_health_check_up{check="database"} 1' in text
    assert 'fleetwatch_health_check_up{check="workers"} 1' in text
    assert "fleetwatch_health_status 1" in text
    assert "# TYPE fleetwatch_health_check_duration_seconds gauge" in text
