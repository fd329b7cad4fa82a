from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection

from alerting_worker.maintenance import rollups, upkeep
from collector_server.monitoring import partitions
from collector_server.monitoring.models import Host, Rollup1h, Rollup1m, RollupState, Series

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clean_tables", "redis_client")]

NOW = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)


def series(name: str, kind: str = "gauge") -> Series:
    host, _ = Host.objects.get_or_create(agent_id="a", defaults={"hostname": "h"})
    return Series.objects.create(
        name=name, kind=kind, labels={"host": "h"}, labels_key=f"{name}|host=h", host=host
    )


def insert(series_id: int, points: list[tuple[datetime, float]]) -> None:
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO monitoring_sample (series_id, ts, value) VALUES (%s, %s, %s)",
            [(series_id, ts, value) for ts, value in points],
        )


def test_minute_rollups_match_raw_data():
    gauge = series("system_cpu_usage_percent")
    points = [
        (NOW + timedelta(seconds=10 * i), float(v)) for i, v in enumerate([5, 15, 10, 40, 20, 30, 7, 9])
    ]
    insert(gauge.id, points)
    RollupState.objects.create(level="1m", done_until=NOW)
    rollups.rollup_minutes(now=NOW + timedelta(minutes=3))
    got = {r.bucket: r for r in Rollup1m.objects.filter(series=gauge).order_by("bucket")}
    for minute in (NOW, NOW + timedelta(minutes=1)):
        values = [v for ts, v in points if minute <= ts < minute + timedelta(minutes=1)]
        row = got[minute]
        assert (row.min, row.max, row.sum, row.count) == (min(values), max(values), sum(values), len(values))
        assert row.last == values[-1] and row.avg == pytest.approx(sum(values) / len(values))
        assert row.increase is None


def test_counter_reset_never_gives_a_negative_increase():
    counter = series("system_network_bytes_sent_total", "counter")
    # 100 -> 160 -> 220, agent restarts (reset to 0) -> 30 -> 90: increase 60+60+30+60 = 210
    values = [100, 160, 220, 30, 90]
    insert(counter.id, [(NOW + timedelta(seconds=10 * i), float(v)) for i, v in enumerate(values)])
    RollupState.objects.create(level="1m", done_until=NOW)
    rollups.rollup_minutes(now=NOW + timedelta(minutes=2))
    row = Rollup1m.objects.get(series=counter, bucket=NOW)
    assert row.increase == 210
    assert row.last == 90


def test_counter_increase_spans_minute_boundaries():
    counter = series("system_disk_read_bytes_total", "counter")
    insert(counter.id, [(NOW + timedelta(seconds=50), 1000.0), (NOW + timedelta(seconds=70), 1500.0)])
    RollupState.objects.create(level="1m", done_until=NOW)
    rollups.rollup_minutes(now=NOW + timedelta(minutes=3))
    second = Rollup1m.objects.get(series=counter, bucket=NOW + timedelta(minutes=1))
    assert second.increase == 500  # the delta from the sample in the previous minute


def test_hour_rollups_aggregate_minutes_and_rerun_is_idempotent():
    gauge = series("system_memory_usage_percent")
    points = [(NOW + timedelta(minutes=i), float(i)) for i in range(10)]
    insert(gauge.id, points)
    RollupState.objects.create(level="1m", done_until=NOW)
    RollupState.objects.create(level="1h", done_until=NOW)
    later = NOW + timedelta(minutes=12)
    rollups.run_rollups(now=later)
    rollups.run_rollups(now=later)
    hours = list(Rollup1h.objects.filter(series=gauge))
    assert sum(h.count for h in hours) == 10
    assert sum(h.sum for h in hours) == sum(range(10))
    assert min(h.min for h in hours) == 0 and max(h.max for h in hours) == 9
    assert Rollup1m.objects.filter(series=gauge).count() == 10


def test_partitions_are_created_ahead():
    today = datetime.now(UTC).date()
    names = upkeep.create_partitions()
    ahead = today + timedelta(days=2)
    assert f"monitoring_sample_p{ahead:%Y%m%d}" in names
    existing = {name for name, _ in partitions.existing_partitions(partitions.SAMPLES)}
    assert f"monitoring_sample_p{ahead:%Y%m%d}" in existing


def test_retention_drops_only_whole_expired_partitions(settings):
    settings.RAW_RETENTION_DAYS = 7
    today = datetime.now(UTC).date()
    old, kept = today - timedelta(days=9), today - timedelta(days=6)
    partitions.ensure_partition(partitions.SAMPLES, old)
    partitions.ensure_partition(partitions.SAMPLES, kept)
    dropped = partitions.drop_expired(partitions.SAMPLES, today=today)
    assert f"monitoring_sample_p{old:%Y%m%d}" in dropped
    names = {name for name, _ in partitions.existing_partitions(partitions.SAMPLES)}
    assert f"monitoring_sample_p{kept:%Y%m%d}" in names
    assert f"monitoring_sample_p{old:%Y%m%d}" not in names


def test_monthly_partitions_for_hour_rollups():
    spec = partitions.ROLLUP_1H
    assert partitions.next_period(spec, date(2026, 12, 1)) == date(2027, 1, 1)
    name = partitions.ensure_partition(spec, date(2026, 2, 17))
    assert name == "monitoring_rollup_1h_p202602"
