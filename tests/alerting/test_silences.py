"""Recurring maintenance windows: across midnight and spanning several days."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from alerting_worker.alerting import dispatch
from collector_server.alerts.models import Alert, Silence

SATURDAY = datetime(2024, 6, 1, tzinfo=UTC)  # a Saturday, 00:00 UTC
assert SATURDAY.weekday() == 5


def window(days: list[int], start: time, minutes: int) -> Silence:
    silence = Silence(
        matchers={"host": "db-1"},
        starts_at=SATURDAY - timedelta(days=60),
        recurrence_days=days,
        window_start=start,
        window_minutes=minutes,
    )
    silence.full_clean()
    return silence


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """Days after SATURDAY (0 = Saturday, 2 = Monday, ...)."""
    return SATURDAY + timedelta(days=day, hours=hour, minutes=minute)


def test_weekly_window_of_three_days_is_active_on_monday():
    silence = window([5], time(0, 0), 72 * 60)  # Saturday 00:00 → Tuesday 00:00
    assert silence.is_active(at(0, 0)) and silence.is_active(at(1, 12))
    assert silence.is_active(at(2, 12)) and silence.is_active(at(2, 23, 59))
    assert not silence.is_active(at(3, 0)) and not silence.is_active(at(6, 23, 59))
    assert silence.is_active(at(7, 0))  # the next Saturday


def test_multi_day_window_starting_late_crosses_several_midnights():
    silence = window([4], time(18, 0), 3 * 1440 + 360)  # Friday 18:00 → Tuesday 00:00
    assert not silence.is_active(at(-1, 17, 59))
    assert silence.is_active(at(-1, 18)) and silence.is_active(at(2, 23, 59))
    assert not silence.is_active(at(3, 0))


def test_week_long_window_is_always_active():
    silence = window([0], time(12, 0), 7 * 1440)
    for hours in range(0, 7 * 24, 5):
        assert silence.is_active(at(0, 0) + timedelta(hours=hours)), hours


def test_daily_window_across_midnight():
    silence = window([0, 1, 2, 3, 4], time(22, 0), 240)  # weeknights 22:00 → 02:00
    assert silence.is_active(at(-1, 23)) and silence.is_active(at(0, 1, 59))  # Friday night into Saturday
    assert not silence.is_active(at(0, 2)) and not silence.is_active(at(0, 23))  # no window Saturday
    assert not silence.is_active(at(1, 1))  # nor Saturday night, so not early Sunday either
    assert not silence.is_active(at(2, 21, 59)) and silence.is_active(at(2, 22))
    assert silence.is_active(at(3, 1, 30)) and not silence.is_active(at(3, 2))


def test_every_day_window_longer_than_a_day_overlaps_itself():
    silence = window(list(range(7)), time(6, 0), 1800)  # 30 h every day: always on
    assert all(silence.is_active(at(0, h)) for h in range(48))


def test_window_does_not_start_before_the_silence_starts():
    silence = window([5], time(0, 0), 72 * 60)
    silence.starts_at = at(2, 0)  # created on Monday: that weekend's window is half gone
    assert not silence.is_active(at(1, 12)) and silence.is_active(at(2, 12))


@pytest.mark.django_db
def test_dispatcher_mutes_an_alert_inside_a_multi_day_window(db):
    window([5], time(0, 0), 72 * 60).save()
    alert = Alert.objects.create(
        name="disk", labels={"host": "db-1"}, labels_key="host=db-1", severity="high", state="firing"
    )
    assert dispatch.mark_muted(at(2, 12)) == {alert.pk}
    assert Alert.objects.get(pk=alert.pk).silenced
    assert dispatch.mark_muted(at(3, 12)) == set()
