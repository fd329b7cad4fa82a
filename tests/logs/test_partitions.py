"""logs_entry is registered for partition upkeep: created ahead, dropped after LOG_RETENTION_DAYS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collector_server.logs.models import LOGS_PARTITIONS, LogEntry
from collector_server.monitoring import partitions as parts
from tests.logs.conftest import fetch_all, record


def test_logs_table_is_registered_with_its_retention_setting():
    spec = parts.REGISTRY["logs_entry"]
    assert spec is LOGS_PARTITIONS
    assert (spec.granularity, spec.retention_setting) == ("day", "LOG_RETENTION_DAYS")


def test_partitions_are_created_ahead_for_logs(partitions):
    today = datetime.now(UTC).date()
    names = {name for name, _ in parts.existing_partitions(LOGS_PARTITIONS)}
    for offset in (-1, 0, 1, 2):
        assert parts.partition_name(LOGS_PARTITIONS, today + timedelta(days=offset)) in names


def test_expired_log_partitions_are_dropped_and_recent_ones_kept(partitions, settings, store):
    settings.LOG_RETENTION_DAYS = 3
    today = datetime.now(UTC).date()
    old = today - timedelta(days=5)
    parts.ensure_partition(LOGS_PARTITIONS, old)
    store([record("recent")])
    dropped = parts.drop_expired(LOGS_PARTITIONS, today)
    assert parts.partition_name(LOGS_PARTITIONS, old) in dropped
    assert parts.partition_name(LOGS_PARTITIONS, today) not in dropped
    assert fetch_all("SELECT message FROM logs_entry") == [("recent",)]


def test_orm_reads_log_entries(store):
    store([record("via the orm", level="ERROR", request_id="r-1")])
    entry = LogEntry.objects.get(request_id="r-1")
    assert entry.level == "ERROR"
    assert entry.level_no == 40
    assert entry.pk == (entry.ts, entry.id)
