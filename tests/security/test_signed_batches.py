"""Signed batches: the host identity comes from the enrollment, never from the batch."""

from __future__ import annotations

import pytest
from django.db import connection

from alerting_worker.ingest import signatures, stats
from collector_server.enrollments.models import Enrollment
from collector_server.monitoring import prometheus
from collector_server.monitoring.models import Host, Series
from shared import streams
from shared.signing import Signer, parse_credential, signature
from tests.ingest.conftest import make_batch, sample_count, wire  # noqa: F401 (wire: a fixture)
from tests.ingest.test_consumer import consumer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("clean_tables", "wire")]


@pytest.fixture(autouse=True)
def signing_required(settings):
    settings.REQUIRE_SIGNED_BATCHES = True
    signatures.CACHE.entries.clear()
    yield
    signatures.CACHE.entries.clear()


@pytest.fixture
def web1():
    """Host web-1, enrolled; its credential."""
    enrollment, credential = Enrollment.enroll("web-1")
    return enrollment, credential


def send(client, credential, payload: bytes, **override: bytes) -> None:
    fields = {streams.PAYLOAD_FIELD: payload, **Signer(credential).fields(payload)}
    fields.update({k.encode(): v for k, v in override.items()})
    client.xadd(streams.stream_key(streams.METRICS), fields)


def deadletter_reasons(client) -> list[str]:
    return [f[b"reason"].decode() for _, f in client.xrange(streams.stream_key(streams.DEAD_LETTER))]


def test_batch_signed_by_web1_claiming_db_prod_is_stored_as_web1(redis_client, web1):
    enrollment, credential = web1
    send(redis_client, credential, make_batch(agent="a1", host="db-prod-1"))
    result = consumer(redis_client).drain(max_seconds=5)
    assert (result.batches, result.dead_lettered) == (1, 0)
    assert set(Host.objects.values_list("hostname", flat=True)) == {"web-1"}
    assert {s.labels["host"] for s in Series.objects.all()} == {"web-1"}
    assert Host.objects.get().agent_id == f"{enrollment.key_id}:a1"


def test_unsigned_batch_is_refused_when_signing_is_required(redis_client):
    redis_client.xadd(streams.stream_key(streams.METRICS), {"b": make_batch(host="db-prod-1")})
    result = consumer(redis_client).drain(max_seconds=5)
    assert (result.batches, result.dead_lettered, sample_count()) == (0, 1, 0)
    assert deadletter_reasons(redis_client) == ["unsigned batch: FLEETWATCH_REQUIRE_SIGNED_BATCHES is true"]
    assert stats.read(redis_client)["batches_refused_unsigned"] == 1


def test_unsigned_batch_keeps_its_host_claim_when_signing_is_off(redis_client, settings):
    settings.REQUIRE_SIGNED_BATCHES = False
    redis_client.xadd(streams.stream_key(streams.METRICS), {"b": make_batch(agent="a1", host="db-7")})
    assert consumer(redis_client).drain(max_seconds=5).batches == 1
    assert Host.objects.get(agent_id="a1").hostname == "db-7"


def test_bad_signature_unknown_key_and_revoked_key_are_dead_lettered_and_counted(redis_client, web1):
    _, credential = web1
    payload = make_batch()
    send(redis_client, credential, payload, s=signature("wrong-secret", payload))
    tampered = payload.replace(b"web-1", b"web-9")  # signed, then changed on the way
    send(redis_client, credential, tampered, s=Signer(credential).fields(payload)[b"s"])
    send(redis_client, credential, make_batch(), k=b"0123456789abcdef")
    send(redis_client, credential, make_batch(), s=b"not-hex")
    other, other_credential = Enrollment.enroll("web-2")
    other.revoke()
    send(redis_client, other_credential, make_batch())
    result = consumer(redis_client).drain(max_seconds=5)
    assert (result.batches, result.dead_lettered, sample_count()) == (0, 5, 0)
    reasons = deadletter_reasons(redis_client)
    assert sum("does not match" in r for r in reasons) == 2
    assert "unknown key id '0123456789abcdef'" in reasons
    assert any("are both required" in r for r in reasons)
    assert any("is revoked" in r for r in reasons)
    counts = stats.read(redis_client)
    assert counts["batches_refused_bad_signature"] == 3
    assert (counts["batches_refused_unknown_key"], counts["batches_refused_revoked"]) == (1, 1)
    assert counts["batches_deadlettered"] == 5
    family = {f.name: f for f in prometheus.redis_families(redis_client)}["fleetwatch_batches_refused_total"]
    assert dict((labels["reason"], value) for labels, value in family.samples) == {
        "unsigned": 0,
        "unknown_key": 1,
        "revoked": 1,
        "bad_signature": 3,
    }


def test_revoking_stops_a_hosts_data_at_once_in_a_worker_that_cached_it(redis_client, web1):
    enrollment, credential = web1
    worker = consumer(redis_client)
    send(redis_client, credential, make_batch())
    assert worker.drain(max_seconds=5).batches == 1  # the key is now cached in this worker
    Enrollment.objects.get(pk=enrollment.pk).revoke()  # as the admin would, in another process
    send(redis_client, credential, make_batch())
    result = worker.drain(max_seconds=5)
    assert (result.batches, result.dead_lettered) == (0, 1)
    assert any("is revoked" in r for r in deadletter_reasons(redis_client))


def test_rotation_keeps_the_old_secret_valid_during_the_grace_period(redis_client, web1):
    from datetime import timedelta

    enrollment, old = web1
    new = enrollment.rotate(grace=timedelta(hours=1))
    assert new.key_id == old.key_id and new.secret != old.secret
    send(redis_client, old, make_batch())  # spooled before the agent got the new secret
    send(redis_client, new, make_batch())
    assert consumer(redis_client).drain(max_seconds=5).batches == 2
    enrollment.rotate(grace=timedelta(0))  # no grace: only the newest secret is valid
    send(redis_client, new, make_batch())
    result = consumer(redis_client).drain(max_seconds=5)
    assert (result.batches, result.dead_lettered) == (0, 1)


def test_replayed_signed_batch_is_stored_once(redis_client, web1):
    _, credential = web1
    payload = make_batch(seq=5)
    send(redis_client, credential, payload)
    send(redis_client, credential, payload)
    result = consumer(redis_client).drain(max_seconds=5)
    assert (result.batches, result.duplicates, sample_count()) == (1, 1, 2)


def test_a_host_cannot_suppress_another_hosts_batches_by_claiming_its_agent_id(redis_client, web1):
    _, web1_credential = web1
    _, db_credential = Enrollment.enroll("db-prod-1")
    send(redis_client, web1_credential, make_batch(agent="db-agent", seq=1, epoch=9))  # forged first
    send(redis_client, db_credential, make_batch(agent="db-agent", seq=1, epoch=9))  # the real one
    result = consumer(redis_client).drain(max_seconds=5)
    assert (result.batches, result.duplicates) == (2, 0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM monitoring_series WHERE labels->>'host' = 'db-prod-1'")
        assert cursor.fetchone()[0] == 2


def test_credential_string_round_trips_and_the_database_holds_no_secret(web1):
    enrollment, credential = web1
    assert parse_credential(str(credential)) == credential
    row = Enrollment.objects.filter(pk=enrollment.pk).values().get()
    assert credential.secret not in str(row)
    assert "secret=<hidden>" in repr(credential)
