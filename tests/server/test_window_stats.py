"""Rollup-backed window statistics (summary, overview) equal the raw-sample answer on the same data."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from alerting_worker.maintenance import rollups
from collector_server.monitoring import window_stats
from collector_server.monitoring.models import RollupState
from collector_server.monitoring.query import LEVEL_1H, LEVEL_1M, LEVEL_5M, RAW
from tests.server.conftest import insert_samples, make_host, make_series

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def covered(segments: list[window_stats.Segment], start: datetime, end: datetime) -> None:
    assert segments[0].start == start
    assert segments[-1].end == end
    for before, after in itertools.pairwise(segments):
        assert before.end == after.start
    for segment in segments:
        assert segment.start < segment.end
        if segment.source == LEVEL_1H:
            assert segment.start.timestamp() % 3600 == 0 and segment.end.timestamp() % 3600 == 0
        if segment.source == LEVEL_5M:
            assert segment.start.timestamp() % 300 == 0 and segment.end.timestamp() % 300 == 0
        if segment.source == LEVEL_1M:
            assert segment.start.timestamp() % 60 == 0 and segment.end.timestamp() % 60 == 0


@pytest.mark.parametrize(
    ("start", "end", "done", "sources"),
    [
        # 24 h with both levels done up to a minute ago: raw edges, 1 m around whole hours.
        (
            T0 + timedelta(seconds=17),
            T0 + timedelta(hours=24, minutes=30, seconds=5),
            {LEVEL_1M: T0 + timedelta(hours=24, minutes=29), LEVEL_1H: T0 + timedelta(hours=24, minutes=29)},
            [RAW, LEVEL_1M, LEVEL_1H, LEVEL_1M, RAW],
        ),
        # Every level: 5 m between the minutes and the hours on both sides.
        (
            T0 + timedelta(minutes=3, seconds=17),
            T0 + timedelta(hours=24, minutes=32, seconds=5),
            {
                LEVEL_1M: T0 + timedelta(hours=24, minutes=31),
                LEVEL_5M: T0 + timedelta(hours=24, minutes=31),
                LEVEL_1H: T0 + timedelta(hours=24, minutes=31),
            },
            [RAW, LEVEL_1M, LEVEL_5M, LEVEL_1H, LEVEL_5M, LEVEL_1M, RAW],
        ),
        # Nothing rolled up yet: all raw.
        (T0, T0 + timedelta(hours=3), {}, [RAW]),
        # Only minutes: 1 m then the raw tail after done_until.
        (T0, T0 + timedelta(hours=3), {LEVEL_1M: T0 + timedelta(hours=2)}, [LEVEL_1M, RAW]),
        # Only hours (an old month): whole hours from 1 h, the rest raw.
        (
            T0 + timedelta(minutes=10),
            T0 + timedelta(days=30),
            {LEVEL_1H: T0 + timedelta(days=29)},
            [RAW, LEVEL_1H, RAW],
        ),
        # A window inside one minute.
        (T0 + timedelta(seconds=5), T0 + timedelta(seconds=50), {LEVEL_1M: T0 + timedelta(hours=1)}, [RAW]),
    ],
)
def test_plan_covers_the_window_once_at_the_coarsest_level(start, end, done, sources):
    segments = window_stats.plan(start, end, done)
    covered(segments, start, end)
    assert [s.source for s in segments] == sources


def seed_irregular(hosts: int, start: datetime, end: datetime) -> dict[int, int]:
    """Gauges with jittered 10-20 s intervals and random values; returns series id -> group."""
    rng = random.Random(7)
    group_of = {}
    for h in range(hosts):
        host = make_host(f"w-{h}")
        for group, name in enumerate(("system_cpu_usage_percent", "system_memory_usage_percent")):
            series = make_series(host, name)
            points, t = [], start
            while t < end:
                points.append((t, round(rng.uniform(0, 100), 3)))
                t += timedelta(seconds=rng.randint(10, 20), microseconds=rng.randint(0, 999_999))
            insert_samples(series, points)
            group_of[series.id] = group
    return group_of


def roll_up(now: datetime) -> None:
    """Run the rollup job's own SQL over everything, as its periodic runs would have."""
    start = now - timedelta(hours=6)
    with connection.cursor() as cursor:
        cursor.execute(
            rollups.ROLLUP_1M_SQL,
            {"lookback": start - rollups.COUNTER_LOOKBACK, "start": start, "end": now},
        )
        cursor.execute(rollups.ROLLUP_1H_SQL, {"start": start, "end": now})
        cursor.execute(rollups.ROLLUP_5M_SQL, {"start": start, "end": now})
    for level in (LEVEL_1M, LEVEL_5M, LEVEL_1H):
        RollupState.objects.update_or_create(level=level, defaults={"done_until": now})


def test_rollup_backed_stats_equal_the_raw_samples_answer(db):
    now = timezone.now()
    data_start = now - timedelta(hours=4, minutes=13, seconds=7)
    group_of = seed_irregular(3, data_start, now)
    done = now.replace(second=0, microsecond=0) - timedelta(minutes=2)
    roll_up(done)
    windows = [
        (now - timedelta(hours=4), now),
        (now - timedelta(hours=3, seconds=31), now - timedelta(minutes=47, seconds=3)),
        (now - timedelta(hours=1), now - timedelta(minutes=30)),
        (now - timedelta(minutes=30), now),
        (now - timedelta(minutes=3, seconds=10), now),  # only the raw tail and a minute
    ]
    levels = window_stats.done_until()
    assert {LEVEL_1M, LEVEL_5M, LEVEL_1H} <= set(levels)
    # The 4 h window really reads the 1 h and 5 m rollups.
    assert {LEVEL_5M, LEVEL_1H} <= {s.source for s in window_stats.plan(*windows[0], levels)}
    from_rollups = window_stats.stats(group_of, windows)
    from_raw = window_stats.stats(group_of, windows, done={})
    assert set(from_rollups) == set(from_raw) == {(g, w) for g in (0, 1) for w in range(len(windows))}
    for key, raw in from_raw.items():
        rolled = from_rollups[key]
        assert rolled.count == raw.count, key
        assert rolled.min == raw.min and rolled.max == raw.max, key
        assert rolled.sum == pytest.approx(raw.sum, rel=1e-12), key


def test_summary_and_overview_from_rollups_equal_raw_answers(api, db):
    now = timezone.now()
    seed_irregular(2, now - timedelta(hours=5), now)
    raw_summary = api.get("/api/v1/monitoring/metrics/summary", {"hours": 4}).json()["data"]["system"]
    raw_overview = api.get("/api/v1/monitoring/dashboard/overview").json()["data"]
    roll_up(now.replace(second=0, microsecond=0) - timedelta(minutes=1))
    # Delete the raw samples the rollups now cover (as retention would): the answers must not change.
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM monitoring_sample WHERE ts >= %s AND ts < %s",
            [now - timedelta(hours=3, minutes=50), now - timedelta(minutes=50)],
        )
    summary = api.get("/api/v1/monitoring/metrics/summary", {"hours": 4}).json()["data"]["system"]
    overview = api.get("/api/v1/monitoring/dashboard/overview").json()["data"]
    assert raw_summary["data_points"] > 1000
    assert summary["data_points"] == pytest.approx(raw_summary["data_points"], abs=2 * 2 * 4)
    for key in ("avg_cpu_percent", "avg_memory_percent"):
        assert summary[key] == pytest.approx(raw_summary[key], abs=0.5)
    assert summary["max_cpu_percent"] >= raw_summary["max_cpu_percent"] - 1.0
    assert overview["system_health"] == raw_overview["system_health"]
    for key in ("avg_cpu_last_hour", "avg_memory_last_hour"):
        assert overview["trends"][key] == pytest.approx(raw_overview["trends"][key], abs=0.5)


def test_five_minute_rollups_equal_the_minutes_they_roll_up_and_serve_whole_5m_steps(api, db):
    now = timezone.now()
    group_of = seed_irregular(1, now - timedelta(hours=7, minutes=20), now)
    done = now.replace(second=0, microsecond=0) - timedelta(minutes=1)
    roll_up(done)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT f.series_id, f.bucket, f.min, f.max, f.sum, f.count, f.last, m.min, m.max, m.sum, m.count, "
            "m.last FROM monitoring_rollup_5m f JOIN LATERAL (SELECT min(min) AS min, max(max) AS max, "
            "sum(sum) AS sum, sum(count) AS count, (array_agg(last ORDER BY bucket DESC))[1] AS last "
            "FROM monitoring_rollup_1m WHERE series_id = f.series_id AND bucket >= f.bucket "
            "AND bucket < f.bucket + interval '5 minutes') m ON true WHERE f.series_id = ANY(%s)",
            [list(group_of)],
        )
        rows = cursor.fetchall()
    assert len(rows) >= 2 * 12 * 5  # two series, the last 6 hours rolled up
    for row in rows:
        assert row[2:7] == pytest.approx(row[7:12]), row[:2]
    params = {
        "metric": "system_cpu_usage_percent",
        "step": "5m",
        "start": int((now - timedelta(hours=7)).timestamp()),
    }
    five = api.get("/api/v1/monitoring/query", params).json()["data"]
    assert five["source"] == LEVEL_5M
    RollupState.objects.filter(level=LEVEL_5M).delete()  # without the level: the 1 m rollups
    one = api.get("/api/v1/monitoring/query", params).json()["data"]
    assert one["source"] == LEVEL_1M
    assert [p[0] for p in five["series"][0]["points"]] == [p[0] for p in one["series"][0]["points"]]
    assert [p[1] for p in five["series"][0]["points"]] == pytest.approx(
        [p[1] for p in one["series"][0]["points"]]
    )


def test_percentiles_keep_the_minute_rollups_at_whole_5m_steps(api, db):
    now = timezone.now()
    seed_irregular(1, now - timedelta(hours=7, minutes=20), now)
    roll_up(now.replace(second=0, microsecond=0) - timedelta(minutes=1))
    params = {
        "metric": "system_cpu_usage_percent",
        "step": "10m",
        "agg": "p95",
        "start": int((now - timedelta(hours=7)).timestamp()),
    }
    assert api.get("/api/v1/monitoring/query", params).json()["data"]["source"] == LEVEL_1M
