"""The GIN indexes are built per closed hour, then per closed day; late records stay searchable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from collector_server.logs import deferred_index, search
from tests.logs.conftest import fetch_all, record


def part_of(day) -> deferred_index.Partition:
    return next(part for part in deferred_index.state() if part.day == day)


@pytest.mark.django_db
def test_hours_then_day_and_late_records(store) -> None:
    today = datetime.now(UTC).date()
    yesterday = today - timedelta(days=1)
    midnight = datetime.combine(yesterday, datetime.min.time(), tzinfo=UTC)
    for name in deferred_index.index_names():  # a partition that existed when migration 0004 ran has some
        with connection.cursor() as cursor:
            cursor.execute(f'DROP INDEX "{name}"')
    assert not part_of(yesterday).hours and not part_of(yesterday).whole_day

    done = deferred_index.build_closed(midnight + timedelta(hours=5))
    assert part_of(yesterday).hours == frozenset(range(4))  # 04:00-05:00 ends less than GRACE before
    assert deferred_index.hour_index(part_of(yesterday).name, 3) in done["built"]
    assert deferred_index.hour_index(part_of(yesterday).name, 3, "attrs") in done["built"]
    assert deferred_index.build_closed(midnight + timedelta(hours=5))["built"] == []  # nothing twice

    # A record arriving late for an hour already indexed is in that hour's partial index.
    late = (midnight + timedelta(hours=2, minutes=30)).timestamp()
    store([{**record("late arrival zzqx-42"), "ts": late}])
    rows, _ = search.run(search.parse({"pattern": "zzqx-4[0-9]"}))
    assert [row["message"] for row in rows] == ["late arrival zzqx-42"]

    done = deferred_index.build_closed(
        datetime.combine(today, datetime.min.time(), tzinfo=UTC) + timedelta(minutes=2)
    )
    name = part_of(yesterday).name
    assert part_of(yesterday).whole_day and not part_of(yesterday).hours
    assert deferred_index.day_index(name) in done["built"]
    assert {deferred_index.hour_index(name, hour) for hour in range(4)} <= set(done["dropped"])
    rows, _ = search.run(search.parse({"pattern": "zzqx-4[0-9]"}))
    assert [row["message"] for row in rows] == ["late arrival zzqx-42"]
    indexes = {row[0] for row in fetch_all("SELECT indexname FROM pg_indexes WHERE tablename = %s", [name])}
    assert {deferred_index.day_index(name, kind) for kind in deferred_index.KINDS} <= indexes
    assert not any("_trgm_h" in index or "_attrs_h" in index for index in indexes)


def test_the_job_is_scheduled_and_allowed() -> None:
    from alerting_worker.jobs_guard import ALLOWED_FUNCTIONS
    from alerting_worker.schedule import SCHEDULE

    path = "collector_server.logs.deferred_index.build_closed"
    assert path in ALLOWED_FUNCTIONS and any(entry.func == path for entry in SCHEDULE)
