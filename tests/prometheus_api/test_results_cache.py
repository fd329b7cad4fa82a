"""The PromQL results cache: the same answers as without it, per organisation, invalidated by late data."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

QUERY = "sum by (host) (rate(jobs_total[5m]))"


@pytest.fixture
def cached(settings, redis_client):
    settings.PROMQL_RESULTS_CACHE = True
    return redis_client


def _seed(store, start: int, minutes: int, org=None, scale: float = 1.0) -> None:
    from collector_server.monitoring.models import Host, Series

    for h, host in enumerate(("batch-1", "batch-2")):
        if org is None:
            series = store.series("jobs_total", "counter", host=host)
        else:
            owner = Host.objects.create(
                agent_id=f"{org.slug}-{host}", hostname=host, organization=org, last_seen=datetime.now(UTC)
            )
            series = Series.objects.create(
                name="jobs_total", kind="counter", labels={"host": host}, labels_key=f"host={host}",
                host=owner, organization=org,
            )  # fmt: skip
        value, points = 0.0, []
        for i in range(minutes * 4):
            value += scale * (1 + (i * (h + 1)) % 5)
            points.append((start + 15 * i + 3, value))
        store.samples(series, points)


def _answer(client, params: dict) -> list:
    response = client.get("/prometheus/api/v1/query_range", {"query": QUERY, **params})
    assert response.status_code == 200, response.content
    return response.json()["data"]["result"]


def _computed_steps(monkeypatch) -> list[int]:
    """Record how many steps each numpy computation covers."""
    from collector_server.prometheus_api.promql import vectorised

    counts: list[int] = []
    original = vectorised.window_values

    def recording(series, steps, *args, **kwargs):
        counts.append(steps.count)
        return original(series, steps, *args, **kwargs)

    monkeypatch.setattr(vectorised, "window_values", recording)
    return counts


def test_cached_answers_equal_computed_ones_and_a_refresh_computes_only_the_tail(
    api, store, now_s, cached, settings, monkeypatch
):
    from alerting_worker.maintenance import rollups

    start = now_s - 4 * 3600
    _seed(store, start, 4 * 60)
    rollups.run_rollups(now=datetime.fromtimestamp(now_s, UTC))
    counts = _computed_steps(monkeypatch)
    params = {"start": now_s - 3 * 3600, "end": now_s, "step": 60}
    first = _answer(api, params)
    # Cold: everything computed, the first block whole (from its hour's start: it is kept).
    head = params["start"] % 3600 // 60
    assert sum(counts) == 3 * 60 + 1 + head and len(first) == 2
    counts.clear()
    again = _answer(api, params)
    assert again == first
    # Only the blocks not wholly before the bound (watermark - 5 min) are computed again.
    assert 0 < sum(counts) <= 60 + 6
    for shift in (1, 2, 3, 59, 60, 61):  # Grafana refreshing: the range moves on
        moved = {"start": params["start"] + 60 * shift, "end": params["end"] + 60 * shift, "step": 60}
        counts.clear()
        with_cache = _answer(api, moved)
        # Only the live tail: the first block, a step shorter each time, is cut from the kept one.
        assert 0 < sum(counts) <= 60 + 6 + shift
        settings.PROMQL_RESULTS_CACHE = False
        assert with_cache == _answer(api, moved)
        settings.PROMQL_RESULTS_CACHE = True


def test_late_data_invalidates_cached_blocks(api, store, now_s, cached, settings):
    from alerting_worker.ingest import rollup_marks
    from alerting_worker.maintenance import rollups
    from collector_server.monitoring.models import Series

    start = now_s - 3 * 3600
    _seed(store, start, 3 * 60)
    rollups.run_rollups(now=datetime.fromtimestamp(now_s, UTC))
    params = {"start": now_s - 2 * 3600, "end": now_s - 3600, "step": 60}
    before = _answer(api, params)
    # A late sample (an agent's spool replayed) in an old minute: a counter jump of 10,000.
    series = Series.objects.get(labels__host="batch-1")
    late = now_s - 5400 + 10
    store.samples(series, [(late, 1e9)])
    rollup_marks.mark_late(cached, late)
    rollups.run_rollups(now=datetime.fromtimestamp(now_s + 60, UTC))
    after = _answer(api, params)
    assert after != before
    settings.PROMQL_RESULTS_CACHE = False
    assert after == _answer(api, params)


def test_organisations_never_share_cached_blocks(api, store, now_s, cached):
    from django.contrib.auth.models import User
    from rest_framework.test import APIClient

    from alerting_worker.maintenance import rollups
    from tests.members import issue_token, member, organization

    start = now_s - 3 * 3600
    _seed(store, start, 3 * 60)
    acme = organization("acme")
    _seed(store, start, 3 * 60, org=acme, scale=100.0)
    rollups.run_rollups(now=datetime.fromtimestamp(now_s, UTC))
    user = User.objects.create_user("acme-viewer", password="acme-password-1")
    other = APIClient()
    other.credentials(
        HTTP_AUTHORIZATION=f"Token {issue_token(member(user, 'viewer', 'acme'), 'viewer', 'acme')}"
    )
    params = {"start": now_s - 2 * 3600, "end": now_s - 3600, "step": 60}
    ours = _answer(api, params)
    theirs = _answer(other, params)
    assert ours and theirs
    assert [r["metric"] for r in ours] == [r["metric"] for r in theirs]
    for mine, its in zip(ours, theirs, strict=True):  # the same query text, 100x the rate
        assert [float(v) * 100 for _, v in mine["values"]] == pytest.approx(
            [float(v) for _, v in its["values"]]
        )
    assert _answer(api, params) == ours and _answer(other, params) == theirs


def _stored_blocks(client) -> list[bytes]:
    from shared import streams

    return [
        k for k in client.scan_iter(f"{streams.prefix()}:promql:results:*") if not k.endswith(b"generation")
    ]


def test_nothing_is_stored_when_the_query_read_the_replica(api, store, now_s, cached, monkeypatch):
    from alerting_worker.maintenance import rollups
    from collector_server.prometheus_api.promql import results_cache
    from collector_server.replica import PRIMARY, REPLICA

    start = now_s - 3 * 3600
    _seed(store, start, 3 * 60)
    rollups.run_rollups(now=datetime.fromtimestamp(now_s, UTC))
    params = {"start": now_s - 2 * 3600, "end": now_s - 3600, "step": 60}
    # The query's reads went to a (possibly lagging) replica: its blocks are not kept.
    monkeypatch.setattr(results_cache, "read_alias", lambda: REPLICA)
    on_replica = _answer(api, params)
    assert on_replica and _stored_blocks(cached) == []
    monkeypatch.setattr(results_cache, "read_alias", lambda: PRIMARY)
    assert _answer(api, params) == on_replica
    assert _stored_blocks(cached)  # computed from the primary: kept
    counts = _computed_steps(monkeypatch)
    monkeypatch.setattr(results_cache, "read_alias", lambda: REPLICA)
    assert _answer(api, params) == on_replica
    assert sum(counts) == 0  # blocks computed from the primary are used on replica reads too


def test_a_lost_generation_key_gets_a_new_token_never_an_old_one(cached):
    from collector_server.prometheus_api.promql import results_cache

    seen = {results_cache.current_generation(cached)}
    assert results_cache.current_generation(cached) in seen  # stable while nothing changes
    for _ in range(3):
        assert results_cache.bump_generation(cached)
        seen.add(results_cache.current_generation(cached))
        cached.delete(results_cache.generation_key())  # evicted or deleted
        seen.add(results_cache.current_generation(cached))
    assert len(seen) == 7


def test_a_failed_bump_keeps_the_late_mark_so_the_next_run_bumps_again(
    api, store, now_s, cached, settings, monkeypatch
):
    from redis import Redis

    from alerting_worker.ingest import rollup_marks
    from alerting_worker.maintenance import rollups
    from collector_server.monitoring.models import Series
    from collector_server.prometheus_api.promql import results_cache

    start = now_s - 3 * 3600
    _seed(store, start, 3 * 60)
    rollups.run_rollups(now=datetime.fromtimestamp(now_s, UTC))
    params = {"start": now_s - 2 * 3600, "end": now_s - 3600, "step": 60}
    series = Series.objects.get(labels__host="batch-1")
    late = now_s - 5400 + 10
    store.samples(series, [(late, 1e9)])
    rollup_marks.mark_late(cached, late)
    stale = _answer(api, params)  # read between the mark and the re-roll: pre-re-roll blocks cached
    real_bump = results_cache.bump_generation
    down = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)  # nothing listens there
    monkeypatch.setattr(results_cache, "bump_generation", lambda client=None: real_bump(down))
    rollups.rollup_minutes(now=datetime.fromtimestamp(now_s + 60, UTC))
    assert rollup_marks.take_late(cached, "1m") == pytest.approx(late)  # given back
    rollup_marks.mark_late(cached, late)
    monkeypatch.setattr(results_cache, "bump_generation", real_bump)
    generation = results_cache.current_generation(cached)
    rollups.rollup_minutes(now=datetime.fromtimestamp(now_s + 120, UTC))
    assert results_cache.current_generation(cached) != generation
    assert rollup_marks.take_late(cached, "1m") is None
    fresh = _answer(api, params)
    assert fresh != stale
    settings.PROMQL_RESULTS_CACHE = False
    assert fresh == _answer(api, params)
