"""GET metrics/system, metrics/summary and dashboard/overview against inserted samples."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from collector_server.monitoring import partitions as parts
from collector_server.monitoring.models import RollupState
from tests.server.conftest import insert_rollup, insert_samples, make_host, make_series, minute_floor

SYSTEM = "/api/v1/monitoring/metrics/system"


def fill_host(host, start, count: int, cpu=lambda i: 20.0 + i, memory=lambda i: 40.0):
    """One collection every 15 s: every system field, plus series that must be ignored."""
    times = [start + timedelta(seconds=15 * i) for i in range(count)]
    series = {
        "cpu": make_series(host, "system_cpu_usage_percent"),
        "cpu_core": make_series(host, "system_cpu_usage_percent", core="0"),
        "memory": make_series(host, "system_memory_usage_percent"),
        "disk_root": make_series(
            host, "system_disk_usage_percent", mountpoint="/", device="sda1", fstype="ext4"
        ),
        "disk_data": make_series(
            host, "system_disk_usage_percent", mountpoint="/data", device="sdb1", fstype="xfs"
        ),
        "sent": make_series(host, "system_network_bytes_sent_total", kind="counter"),
        "sent_eth0": make_series(host, "system_network_bytes_sent_total", kind="counter", interface="eth0"),
        "recv": make_series(host, "system_network_bytes_recv_total", kind="counter"),
        "conns": make_series(host, "system_connections_active"),
    }
    insert_samples(series["cpu"], [(t, cpu(i)) for i, t in enumerate(times)])
    insert_samples(series["cpu_core"], [(t, 99.0) for t in times])
    insert_samples(series["memory"], [(t, memory(i)) for i, t in enumerate(times)])
    insert_samples(series["disk_root"], [(t, 30.0) for t in times])
    insert_samples(series["disk_data"], [(t, 90.0) for t in times])
    insert_samples(series["sent"], [(t, 1000.0 * (i + 1)) for i, t in enumerate(times)])
    insert_samples(series["sent_eth0"], [(t, 7.0) for t in times])
    insert_samples(series["recv"], [(t, 2000.0 * (i + 1)) for i, t in enumerate(times)])
    insert_samples(series["conns"], [(t, 42.0) for t in times])
    return times, series


def test_system_rows_align_fields_per_collection_time(api, db):
    host = make_host("web-1")
    start = minute_floor(timezone.now()) - timedelta(minutes=10)
    times, _ = fill_host(host, start, 8)
    body = api.get(SYSTEM, {"minutes": 30}).json()
    assert body["success"] is True
    assert body["count"] == 8
    assert body["time_range_minutes"] == 30
    assert body["source"] == "raw"
    first = body["data"][0]
    assert first == {
        "timestamp": times[0].strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpu_percent": 20.0,
        "memory_percent": 40.0,
        "disk_usage_percent": 30.0,
        "network_bytes_sent": 1000,
        "network_bytes_recv": 2000,
        "active_connections": 42,
    }
    assert [row["cpu_percent"] for row in body["data"]] == [20.0 + i for i in range(8)]


def test_system_rows_of_several_hosts_carry_host_and_host_param_selects_one(api, db):
    start = minute_floor(timezone.now()) - timedelta(minutes=5)
    fill_host(make_host("web-1"), start, 4)
    fill_host(make_host("web-2"), start, 4, cpu=lambda i: 70.0)
    both = api.get(SYSTEM, {"minutes": 30}).json()
    assert both["count"] == 8
    assert {row["host"] for row in both["data"]} == {"web-1", "web-2"}
    one = api.get(SYSTEM, {"minutes": 30, "host": "web-2"}).json()
    assert one["count"] == 4
    assert "host" not in one["data"][0]
    assert {row["cpu_percent"] for row in one["data"]} == {70.0}


def test_disk_without_root_mount_reports_the_fullest_mountpoint(api, db):
    host = make_host("nas-1")
    data = make_series(host, "system_disk_usage_percent", mountpoint="/srv")
    backup = make_series(host, "system_disk_usage_percent", mountpoint="/backup")
    ts = timezone.now() - timedelta(minutes=1)
    insert_samples(data, [(ts, 55.0)])
    insert_samples(backup, [(ts, 81.0)])
    body = api.get(SYSTEM, {"minutes": 5}).json()
    assert [row["disk_usage_percent"] for row in body["data"]] == [81.0]


def test_a_day_of_system_metrics_reads_minute_rollups(api, db):
    host = make_host("web-1")
    cpu = make_series(host, "system_cpu_usage_percent")
    sent = make_series(host, "system_network_bytes_sent_total", kind="counter")
    done = minute_floor(timezone.now()) - timedelta(minutes=3)
    buckets = [done - timedelta(minutes=m) for m in range(1, 11)]
    insert_rollup("monitoring_rollup_1m", cpu, [(b, 10.0, 30.0, 80.0, 4, 30.0, None) for b in buckets])
    insert_rollup("monitoring_rollup_1m", sent, [(b, 0.0, 500.0, 0.0, 4, 500.0, 100.0) for b in buckets])
    RollupState.objects.create(level="1m", done_until=done)
    insert_samples(cpu, [(done + timedelta(seconds=10), 50.0), (done + timedelta(seconds=40), 70.0)])
    body = api.get(SYSTEM, {"minutes": 24 * 60}).json()
    assert body["source"] == "1m"
    assert body["count"] == 11
    assert body["data"][0]["cpu_percent"] == 20.0  # bucket average: sum 80 / count 4
    assert body["data"][0]["network_bytes_sent"] == 500  # counters: the bucket's last value
    assert body["data"][-1]["cpu_percent"] == 60.0  # not yet rolled up: averaged from raw


def test_summary_averages_and_maxima_match_hand_computation(api, db):
    start = minute_floor(timezone.now()) - timedelta(minutes=30)
    fill_host(make_host("web-1"), start, 10, cpu=lambda i: 10.0 * i, memory=lambda i: 50.0 + i)
    fill_host(make_host("web-2"), start, 10, cpu=lambda i: 5.0, memory=lambda i: 60.0)
    body = api.get("/api/v1/monitoring/metrics/summary", {"hours": 2}).json()
    assert body["success"] is True
    system = body["data"]["system"]
    cpus = [10.0 * i for i in range(10)] + [5.0] * 10
    memories = [50.0 + i for i in range(10)] + [60.0] * 10
    assert body["data"]["time_period_hours"] == 2
    assert system["avg_cpu_percent"] == pytest.approx(sum(cpus) / len(cpus))
    assert system["max_cpu_percent"] == 90.0
    assert system["avg_memory_percent"] == pytest.approx(sum(memories) / len(memories))
    assert system["max_memory_percent"] == 60.0
    assert system["avg_disk_percent"] == 30.0  # mountpoint "/" only
    assert system["max_disk_percent"] == 30.0  # "/data" is at 90 %
    assert system["data_points"] == 20
    assert set(body["data"]["api"]) >= {"total_requests", "avg_response_time_ms", "error_rate_percent"}


def test_summary_reads_hourly_rollups_for_a_month(api, db):
    host = make_host("web-1")
    cpu = make_series(host, "system_cpu_usage_percent")
    done = timezone.now().replace(minute=0, second=0, microsecond=0)
    buckets = [done - timedelta(hours=h) for h in range(1, 200)]
    for day in {b.date() for b in buckets}:
        parts.ensure_partition(parts.ROLLUP_1H, day)
    insert_rollup("monitoring_rollup_1h", cpu, [(b, 1.0, 9.0, 300.0, 60, 5.0, None) for b in buckets])
    RollupState.objects.create(level="1h", done_until=done)
    body = api.get("/api/v1/monitoring/metrics/summary", {"hours": 24 * 30}).json()
    system = body["data"]["system"]
    assert system["avg_cpu_percent"] == 5.0
    assert system["max_cpu_percent"] == 9.0
    assert system["data_points"] == 199 * 60


def test_overview_reports_current_usage_trends_and_host_counts(api, db):
    now = timezone.now()
    web = make_host("web-1")
    make_host("old-1", seen_ago=timedelta(hours=3))
    start = now - timedelta(minutes=59)
    # cpu climbs from 10 to ~69 over the hour; memory stays at 40.
    fill_host(web, start, 236, cpu=lambda i: 10.0 + i / 4, memory=lambda i: 40.0)
    body = api.get("/api/v1/monitoring/dashboard/overview").json()
    data = body["data"]
    health = data["system_health"]
    assert health["cpu_usage"] == pytest.approx(10.0 + 235 / 4, abs=0.01)
    assert health["memory_usage"] == 40.0
    assert health["disk_usage"] == 30.0
    assert health["status"] == "healthy"
    assert (health["hosts_up"], health["hosts_down"]) == (1, 1)
    assert data["trends"]["cpu_trend"] == "increasing"
    assert data["trends"]["memory_trend"] == "stable"
    assert data["trends"]["avg_memory_last_hour"] == 40.0
    assert data["trends"]["avg_cpu_last_hour"] == pytest.approx(10.0 + 235 / 8, abs=0.01)
    assert set(data["alerts"]) >= {"total_active", "by_severity", "critical_count", "high_count"}
    assert set(data["api_performance"]) >= {
        "total_requests",
        "avg_response_time",
        "error_rate",
        "unique_endpoints",
    }


def test_overview_status_is_critical_when_a_disk_is_full(api, db):
    host = make_host("web-1")
    disk = make_series(host, "system_disk_usage_percent", mountpoint="/")
    insert_samples(disk, [(timezone.now() - timedelta(seconds=30), 97.0)])
    health = api.get("/api/v1/monitoring/dashboard/overview").json()["data"]["system_health"]
    assert health["status"] == "critical"
    assert health["disk_usage"] == 97.0
    assert health["cpu_usage"] is None


def test_overview_counts_open_alerts_by_severity(api, db):
    from django.apps import apps

    alert = apps.get_model("alerts", "Alert")
    for i, (severity, state) in enumerate(
        [
            ("critical", "firing"),
            ("high", "pending"),
            ("high", "firing"),
            ("high", "resolved"),
            ("low", "inactive"),
        ]
    ):
        alert.objects.create(name=f"rule-{i}", labels={}, labels_key=f"k{i}", severity=severity, state=state)
    alerts = api.get("/api/v1/monitoring/dashboard/overview").json()["data"]["alerts"]
    assert alerts["total_active"] == 3
    assert alerts["by_severity"] == {"critical": 1, "high": 2}
    assert (alerts["critical_count"], alerts["high_count"]) == (1, 2)
    assert alerts["available"] is True
