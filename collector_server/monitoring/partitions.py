"""Create time partitions ahead and enforce retention by dropping whole partitions.

Each partitioned table is registered with its granularity (day or month) and the
setting that holds its retention in days. Partition names carry their lower
bound: monitoring_sample_p20261123 (day), monitoring_rollup_1h_p202611 (month).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction

log = logging.getLogger(__name__)

DAY = "day"
MONTH = "month"


@dataclass(frozen=True)
class PartitionedTable:
    table: str
    granularity: str
    retention_setting: str

    @property
    def retention_days(self) -> int:
        return int(getattr(settings, self.retention_setting))


REGISTRY: dict[str, PartitionedTable] = {}


def register(table: str, granularity: str, retention_setting: str) -> PartitionedTable:
    """Register a partitioned table so the periodic jobs maintain it."""
    spec = PartitionedTable(table, granularity, retention_setting)
    REGISTRY[table] = spec
    return spec


SAMPLES = register("monitoring_sample", DAY, "RAW_RETENTION_DAYS")
ROLLUP_1M = register("monitoring_rollup_1m", DAY, "ROLLUP_1M_RETENTION_DAYS")
ROLLUP_1H = register("monitoring_rollup_1h", MONTH, "ROLLUP_1H_RETENTION_DAYS")
ROLLUP_5M = register("monitoring_rollup_5m", DAY, "ROLLUP_1M_RETENTION_DAYS")
# The PromQL engine's packed blocks of each level (prometheus_api/promql/rollup_blocks.py):
# partitioned and kept like their level, their spans never crossing a partition.
BLOCK_1M = register("monitoring_block_1m", DAY, "ROLLUP_1M_RETENTION_DAYS")
BLOCK_1H = register("monitoring_block_1h", MONTH, "ROLLUP_1H_RETENTION_DAYS")
BLOCK_5M = register("monitoring_block_5m", DAY, "ROLLUP_1M_RETENTION_DAYS")

_known: set[str] = set()


def period_start(spec: PartitionedTable, day: date) -> date:
    return day.replace(day=1) if spec.granularity == MONTH else day


def next_period(spec: PartitionedTable, start: date) -> date:
    if spec.granularity == DAY:
        return start + timedelta(days=1)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def partition_name(spec: PartitionedTable, start: date) -> str:
    suffix = start.strftime("%Y%m%d" if spec.granularity == DAY else "%Y%m")
    return f"{spec.table}_p{suffix}"


def ensure_partition(spec: PartitionedTable, day: date) -> str:
    """Create the partition holding `day` if it does not exist; return its name."""
    start = period_start(spec, day)
    name = partition_name(spec, start)
    if name in _known:
        return name
    end = next_period(spec, start)
    # Two workers may need the same new partition at once; CREATE ... IF NOT EXISTS alone
    # is not safe against that, so creations of one name are serialised by a lock.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [name])
        cursor.execute(
            f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF "{spec.table}" '
            f"FOR VALUES FROM ('{start.isoformat()}T00:00:00+00:00') TO ('{end.isoformat()}T00:00:00+00:00')"
        )
        # Known only once committed: a rolled-back creation must be tried again.
        transaction.on_commit(lambda: _known.add(name))
    return name


def ensure_ahead(days_ahead: int | None = None, today: date | None = None) -> list[str]:
    """Create the partitions of every registered table from yesterday to `days_ahead` days ahead."""
    days_ahead = settings.PARTITIONS_AHEAD_DAYS if days_ahead is None else days_ahead
    today = today or datetime.now(UTC).date()
    created = []
    for spec in REGISTRY.values():
        for offset in range(-1, days_ahead + 1):
            created.append(ensure_partition(spec, today + timedelta(days=offset)))
    return sorted(set(created))


def existing_partitions(spec: PartitionedTable) -> list[tuple[str, date]]:
    """Return (name, lower bound) of each partition of a table, oldest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s",
            [spec.table],
        )
        names = [row[0] for row in cursor.fetchall()]
    pattern = re.compile(rf"^{re.escape(spec.table)}_p(\d{{6}}|\d{{8}})$")
    out = []
    for name in names:
        match = pattern.match(name)
        if match:
            digits = match.group(1)
            start = datetime.strptime(digits, "%Y%m%d" if len(digits) == 8 else "%Y%m").date()
            out.append((name, start))
    return sorted(out, key=lambda item: item[1])


def drop_expired(spec: PartitionedTable, today: date | None = None) -> list[str]:
    """Drop partitions whose whole range is older than the table's retention."""
    today = today or datetime.now(UTC).date()
    cutoff = today - timedelta(days=spec.retention_days)
    dropped = []
    for name, start in existing_partitions(spec):
        if next_period(spec, start) <= cutoff:
            with connection.cursor() as cursor:
                cursor.execute(f'DROP TABLE IF EXISTS "{name}"')
            _known.discard(name)
            dropped.append(name)
            log.info("retention: dropped partition %s (older than %d days)", name, spec.retention_days)
    return dropped


def enforce_retention(today: date | None = None) -> list[str]:
    dropped: list[str] = []
    for spec in REGISTRY.values():
        dropped.extend(drop_expired(spec, today))
    return dropped


def forget_cache() -> None:
    """Forget which partitions are known to exist (after a test drops tables)."""
    _known.clear()
