"""GET /api/v1/logs/stats and GET /api/v1/logs/requests/{request_id}."""

from __future__ import annotations

import time
from datetime import datetime

from tests.logs.conftest import record


def test_stats_counts_levels_services_hosts_and_error_rate(api, store):
    store(
        [record("ok", service="api")] * 6 + [record("boom", level="ERROR", service="api")] * 2, host="web-1"
    )
    store(
        [
            record("slow", level="WARNING", service="worker"),
            record("dead", level="CRITICAL", service="worker"),
        ],
        host="web-2",
    )
    store([record("ancient", ago=30 * 3600, service="api")], host="web-1")  # outside the 24 h window
    response = api.get("/api/v1/logs/stats", {"hours": 24})
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["total"] == 10
    assert data["by_level"] == {"DEBUG": 0, "INFO": 6, "WARNING": 1, "ERROR": 2, "CRITICAL": 1}
    assert data["by_service"] == {"api": 8, "worker": 2}
    assert data["by_host"] == {"web-1": 8, "web-2": 2}
    assert data["error_count"] == 3
    assert data["error_rate_percent"] == 30.0
    assert data["top_messages"][0] == {"message": "ok", "level": "INFO", "count": 6}
    assert data["top_messages"][1] == {"message": "boom", "level": "ERROR", "count": 2}


def test_stats_timeline_buckets_by_level_and_service(api, store):
    now = time.time()
    store(
        [
            {"ts": now - 7200 - 60, "level": "INFO", "message": "a", "service": "api"},
            {"ts": now - 7200 - 30, "level": "ERROR", "message": "b", "service": "api"},
            {"ts": now - 60, "level": "INFO", "message": "c", "service": "worker"},
        ]
    )
    data = api.get("/api/v1/logs/stats", {"hours": 3}).json()["data"]
    assert data["bucket_seconds"] == 300
    timeline = data["timeline"]
    assert sum(b["total"] for b in timeline) == 3
    first, last = timeline[0], timeline[-1]
    assert first["levels"]["INFO"] + first["levels"]["ERROR"] == first["total"]
    assert first["services"].get("api") == first["total"]
    assert last["services"] == {"worker": 1}
    stamps = [datetime.fromisoformat(b["bucket"]) for b in timeline]
    assert stamps == sorted(stamps)
    assert all(stamp.timestamp() % 300 == 0 for stamp in stamps)


def test_stats_rejects_hours_outside_retention(api, partitions):
    response = api.get("/api/v1/logs/stats", {"hours": 24 * 365})
    assert response.status_code == 400
    assert "hours" in response.json()["detail"]


def test_request_records_across_hosts_in_time_order(api, store):
    now = time.time()
    store(
        [{"ts": now - 5, "level": "INFO", "message": "db query", "request_id": "req-x", "service": "db"}],
        host="db-1",
    )
    store(
        [
            {
                "ts": now - 9,
                "level": "INFO",
                "message": "request started",
                "request_id": "req-x",
                "service": "api",
            },
            {
                "ts": now - 1,
                "level": "INFO",
                "message": "request finished",
                "request_id": "req-x",
                "service": "api",
            },
            {
                "ts": now - 3,
                "level": "INFO",
                "message": "other request",
                "request_id": "req-y",
                "service": "api",
            },
        ],
        host="web-1",
    )
    response = api.get("/api/v1/logs/requests/req-x")
    assert response.status_code == 200
    body = response.json()
    assert [row["message"] for row in body["data"]] == ["request started", "db query", "request finished"]
    assert body["hosts"] == ["db-1", "web-1"]
    assert body["services"] == ["api", "db"]
    assert body["count"] == 3
    assert 7_900 <= body["duration_ms"] <= 8_100


def test_unknown_request_id_is_404(api, partitions):
    response = api.get("/api/v1/logs/requests/req-missing")
    assert response.status_code == 404
    assert "req-missing" in response.json()["error"]
