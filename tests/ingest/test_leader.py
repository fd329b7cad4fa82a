"""The scheduler's lease: one leader, a standby that enqueues nothing, a lease re-taken after Redis lost it."""

from __future__ import annotations

import pytest
from rq import Queue
from rq.cron import CronScheduler

from alerting_worker import leader
from alerting_worker.leader import LEADER_TTL, Leadership, build_cron


@pytest.fixture
def lease_key(redis_client):
    return "fwtest-lease:scheduler:leader"


def test_one_scheduler_holds_the_lease_and_another_stands_by(redis_client, lease_key):
    first, second = (
        Leadership(redis_client, lease_key, "first"),
        Leadership(redis_client, lease_key, "second"),
    )
    assert first.claim() and first.held
    assert not second.claim() and not second.held and second.standing_by
    assert redis_client.get(lease_key) == b"first"
    assert 0 < redis_client.ttl(lease_key) <= LEADER_TTL


def test_lease_lost_by_redis_is_taken_again(redis_client, lease_key):
    first = Leadership(redis_client, lease_key, "first")
    assert first.claim()
    redis_client.delete(lease_key)  # a Redis restarted without its data
    assert first.claim() and first.held
    assert redis_client.get(lease_key) == b"first"


def test_lease_taken_by_another_scheduler_stops_this_one_leading(redis_client, lease_key):
    first = Leadership(redis_client, lease_key, "first")
    assert first.claim()
    redis_client.set(lease_key, "second", ex=LEADER_TTL)  # first's lease expired during an outage
    assert not first.claim() and not first.held
    first.release()
    assert redis_client.get(lease_key) == b"second"  # release never deletes another's lease


def test_an_old_confirmation_is_not_trusted(redis_client, lease_key):
    first = Leadership(redis_client, lease_key, "first")
    assert first.claim()
    first.confirmed_at -= LEADER_TTL  # no successful renewal for a whole TTL (Redis was down)
    assert not first.held


def test_a_standby_scheduler_enqueues_nothing_until_it_leads(redis_client, lease_key, monkeypatch):
    monkeypatch.setattr(leader.time, "sleep", lambda seconds: None)
    Leadership(redis_client, lease_key, "other").claim()
    standby = build_cron(redis_client, Leadership(redis_client, lease_key, "standby"), name="standby")
    standby._step()
    assert Queue("ingest", connection=redis_client).count == 0
    assert not CronScheduler.all(connection=redis_client, cleanup=False)  # a standby is not registered
    redis_client.delete(lease_key)  # the leader went away
    standby._step()
    assert Queue("ingest", connection=redis_client).count >= 2  # both drains enqueued
    assert [s.name for s in CronScheduler.all(connection=redis_client, cleanup=False)] == ["standby"]
