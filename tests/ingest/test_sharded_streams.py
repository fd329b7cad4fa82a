"""Sharded streams on a real three-master Redis Cluster (STREAM_SHARDS, STREAM_REDIS_CLUSTER).

The agents' own Transport writes each agent's batches to the shard of its id; workers (here in
process, and as real worker and scheduler processes) drain every shard through the consumer
group; a master killed with SIGKILL and started again from its append-only file loses nothing
and the workers store nothing twice.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from django.db import connection

from agent.spool import Spool
from agent.transport import Transport
from alerting_worker.ingest import jobs, stats
from collector_server import redis_conn
from collector_server.monitoring import health, prometheus
from shared import redis_acl, streams
from tests.ingest.conftest import make_batch, sample_count
from tests.ingest.own_servers import process, stop_processes
from tests.ingest.redis_cluster import RedisClusterNodes, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("clean_tables")]

SHARDS = 6
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    nodes = RedisClusterNodes(tmp_path_factory.mktemp("cluster")).start()
    yield nodes
    nodes.stop()


def _clear_caches() -> None:
    redis_conn._client.cache_clear()
    redis_conn._cluster.cache_clear()
    health._client.cache_clear()
    health._cluster_client.cache_clear()


@pytest.fixture
def sharded(cluster, redis_client, settings):
    """Settings of a deployment whose streams are 6 shards on the cluster; the RQ Redis stays plain."""
    settings.STREAM_REDIS_URL = cluster.url
    settings.STREAM_REDIS_CLUSTER = True
    settings.STREAM_SHARDS = SHARDS
    settings.INGEST_CLAIM_IDLE_MS = 1000
    _clear_caches()
    yield cluster
    _clear_caches()


class Agents:
    """`count` agents, each with the agent's own Transport on the shard of its id."""

    def __init__(self, folder: Path, url: str, count: int) -> None:
        self.ids = [f"agent-{number:03d}" for number in range(count)]
        self.transports = {
            agent: Transport(
                url,
                streams.producer_key(streams.METRICS, agent, SHARDS),
                Spool(folder / agent, 10_000_000),
                cluster=True,
                replay_budget=5.0,
            )
            for agent in self.ids
        }
        self.seq = 0
        self.sent = 0
        self.start = int(time.time()) - 600

    def send_round(self) -> dict[str, bool]:
        """One batch (2 samples) from every agent; return which were delivered at once."""
        self.seq += 1
        delivered = {}
        for agent, transport in self.transports.items():
            batch = make_batch(agent=agent, host=f"host-{agent}", seq=self.seq, ts=self.start + self.seq)
            delivered[agent] = transport.send(batch)
            self.sent += 1
        return delivered

    def flush(self) -> None:
        for transport in self.transports.values():
            assert transport.flush(10.0), f"{transport.stream_key}: spool not replayed"

    def close(self) -> None:
        for transport in self.transports.values():
            transport.close()


def duplicate_rows() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) - count(DISTINCT (series_id, ts)) FROM monitoring_sample")
        return cursor.fetchone()[0]


def test_shard_keys_hash_tags_and_the_agents_hash():
    assert streams.shard_keys(streams.METRICS, 1, "fw") == ["fw:stream:metrics"]
    assert streams.producer_key(streams.METRICS, "anything", 1, "fw") == "fw:stream:metrics"
    assert streams.shard_keys(streams.LOGS, 3, "fw") == [
        "fw:stream:logs:{0}", "fw:stream:logs:{1}", "fw:stream:logs:{2}", "fw:stream:logs",
    ]  # fmt: skip
    # The test vector of docs/wire-format.md: CRC-32 of the UTF-8 agent id, modulo the shards.
    assert streams.shard_of("web-1", 16) == 0xBB8F8968 % 16 == 8
    assert streams.producer_key(streams.METRICS, "web-1", 16, "fleetwatch") == "fleetwatch:stream:metrics:{8}"
    assert streams.producer_key(streams.METRICS, "web-1", 4, "fleetwatch") == "fleetwatch:stream:metrics:{0}"
    assert streams.producer_key(streams.METRICS, "db-7", 16, "fleetwatch") == "fleetwatch:stream:metrics:{6}"
    assert streams.producer_key(streams.LOGS, "k8s/node-a", 12, "fleetwatch") == "fleetwatch:stream:logs:{5}"
    assert streams.dead_letter_key_for("fw:stream:metrics:{4}", "fw") == "fw:stream:deadletter:{4}"
    assert streams.dead_letter_key_for("fw:stream:metrics", "fw") == "fw:stream:deadletter"
    for bad in ("0", "-1", "1025", "two", "1.5", "", True):
        with pytest.raises(ValueError, match="STREAM_SHARDS"):
            streams.parse_shards(bad)


def test_workers_drain_every_shard_across_the_masters(sharded, tmp_path):
    agents = Agents(tmp_path, sharded.url, 30)
    try:
        for _ in range(3):
            assert all(agents.send_round().values())
    finally:
        agents.close()
    client = redis_conn.get_stream_redis()
    used = {streams.producer_key(streams.METRICS, agent, SHARDS) for agent in agents.ids}
    assert len(used) == SHARDS and len({sharded.master_of(key) for key in used}) == 3
    # An agent configured without shards (the unsharded key) and a bad entry on a shard.
    client.xadd(streams.stream_key(streams.METRICS), {"b": make_batch(agent="old-agent", seq=1)})
    bad_shard = streams.shard_key(streams.METRICS, 2, SHARDS)
    client.xadd(bad_shard, {"b": b"not msgpack"})

    summary = jobs.drain(streams.METRICS, max_seconds=60)

    assert (summary["batches"], summary["dead_lettered"]) == (30 * 3 + 1, 1)
    assert sample_count() == 2 * (30 * 3 + 1) and duplicate_rows() == 0
    dead = client.xrange(streams.dead_letter_key_for(bad_shard))
    assert len(dead) == 1 and dead[0][1][b"stream"] == bad_shard.encode()
    counters = stats.read(client)
    assert (counters["batches_ingested"], counters["batches_deadlettered"]) == (91, 1)
    state = health.stream_state(health.health_stream_redis(), streams.METRICS)
    assert (state["shards"], state["length"], state["lag"], state["pending"]) == (SHARDS, 92, 0, 0)
    assert len(state["by_shard"]) == SHARDS + 1
    check = health.check_streams(health.health_stream_redis())
    assert check.healthy and check.details["deadletter_length"] == 1
    families = {family.name: family for family in prometheus.collect()}
    assert families["fleetwatch_deadletter_length"].samples == [({}, 1)]
    assert len(families["fleetwatch_stream_shard_lag"].samples) == 2 * (SHARDS + 1)
    from alerting_worker.maintenance.upkeep import trim_streams

    assert trim_streams()[streams.METRICS] == 92  # every acknowledged entry of every shard


def test_agent_user_may_xadd_to_every_shard_on_every_master(sharded):
    client = redis_conn.get_stream_redis()
    redis_acl.ensure_agent_user(client, "agent-shards", "pw", shards=SHARDS)
    assert redis_acl.check_agent_user(client, "agent-shards", shards=SHARDS)["problems"] == []
    for port in sharded.ports:  # ACLs are per node: every master has the user
        assert sharded.node(port).acl_getuser("agent-shards") is not None
    agent = redis_conn.cluster_client(
        f"redis://agent-shards:pw@127.0.0.1:{sharded.ports[0]}/0", socket_timeout=5, connect_timeout=5
    )
    try:
        for key in redis_acl.stream_keys(shards=SHARDS):
            agent.xadd(key, {"b": b"x"})
        too_far = streams.shard_key(streams.METRICS, SHARDS, SHARDS + 1)  # an agent told of more shards
        with pytest.raises(Exception, match=r"NOPERM|permission"):
            agent.xadd(too_far, {"b": b"x"})
        with pytest.raises(Exception, match=r"NOPERM|permission"):
            agent.xrange(streams.shard_key(streams.METRICS, 0, SHARDS))
    finally:
        agent.close()
        for port in sharded.ports:
            sharded.node(port).acl_deluser("agent-shards")


def test_master_restart_with_real_workers_loses_and_duplicates_nothing(
    sharded, tmp_path, redis_url, settings
):
    # The victim is the node every client starts from (STREAM_REDIS_URL, the agents' URL) and,
    # by the choice of prefix, the master of the pipeline counters and of the enrollment
    # version (keys every chunk touches): its outage must stop only its own shards.
    victim = sharded.ports[0]
    prefix = next(
        candidate
        for candidate in (f"{streams.prefix()}-{n}" for n in range(1000))
        if {
            sharded.master_of(streams.stats_key(candidate)),
            sharded.master_of(streams.enrollments_version_key(candidate)),
        }
        == {victim}
    )
    os.environ["FLEETWATCH_STREAM_PREFIX"] = settings.STREAM_PREFIX = prefix  # the fixture restores it
    agents = Agents(tmp_path / "agents", sharded.url, 18)
    db = connection.settings_dict
    env = dict(
        os.environ,
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        REDIS_URL=redis_url,
        STREAM_REDIS_URL=sharded.url,
        STREAM_REDIS_CLUSTER="true",
        STREAM_SHARDS=str(SHARDS),
        INGEST_CLAIM_IDLE_MS="1000",
        RECONNECT_MAX_SECONDS="0.5",
        SECRET_KEY="test",
        LOG_FORMAT="text",
    )
    client = redis_conn.get_stream_redis()
    used = sorted({streams.producer_key(streams.METRICS, agent, SHARDS) for agent in agents.ids})
    on_victim = [key for key in used if sharded.master_of(key) == victim]
    agents.send_round()
    # A worker that read the victim's shard and died before its XACK: its entries stay pending.
    from alerting_worker.ingest.consumer import ensure_group

    ensure_group(client, on_victim[0])
    claimed = client.xreadgroup(streams.CONSUMER_GROUP, "dead-worker", {on_victim[0]: ">"}, count=100)
    assert claimed and claimed[0][1]
    worker = process(["worker"], env, tmp_path / "worker.log", str(ROOT))
    scheduler = process(["scheduler"], env, tmp_path / "scheduler.log", str(ROOT))
    try:
        wait_until(lambda: sample_count() == 2 * agents.sent, 90, "the first round stored (reclaimed too)")
        agents.send_round()
        wait_until(lambda: sample_count() == 2 * agents.sent, 60, "the second round stored")
        sharded.kill(victim)
        for _ in range(3):  # agents of the victim's shards spool; the others are stored meanwhile
            delivered = agents.send_round()
        spooled = [agent for agent, ok in delivered.items() if not ok]
        assert spooled and all(
            sharded.master_of(streams.producer_key(streams.METRICS, a, SHARDS)) == victim for a in spooled
        )
        stored_meanwhile = 2 * (agents.sent - 3 * len(spooled))
        wait_until(lambda: sample_count() == stored_meanwhile, 120, "the live masters' shards stored")
        sharded.start_node(victim)  # from its append-only file
        sharded.wait_ok()
        agents.flush()  # the spools replay into the victim's shards
        wait_until(lambda: sample_count() >= 2 * agents.sent, 120, "every batch stored after the restart")
        time.sleep(2)  # a late duplicate would show up now
        assert sample_count() == 2 * agents.sent and duplicate_rows() == 0
        for key in streams.shard_keys(streams.METRICS, SHARDS):
            state = health.shard_state(client, key)
            assert (state["lag"], state["pending"]) == (0, 0), key
    finally:
        agents.close()
        stop_processes(worker, scheduler)
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert "is unavailable" in log  # the drains went on with the live shards


def test_server_producers_and_workers_shard_on_a_plain_redis(redis_client, settings):
    """Remote write / OTLP batches go to the shard of their agent id; one MULTI acks on a plain Redis."""
    from collector_server.orgs.scope import queued_agent_id
    from collector_server.prometheus_api import stream_queue
    from shared.wire import series_dict

    settings.STREAM_SHARDS = 4
    now = time.time()
    by_host = {f"pushed-{n}": [series_dict("pushed_metric", [[now, float(n)]])] for n in range(12)}
    assert stream_queue.queue(streams.METRICS, "remote-write", b"body", by_host) == 12
    for host in by_host:
        key = streams.producer_key(streams.METRICS, queued_agent_id("remote-write", host, None), 4)
        assert key.endswith("}") and redis_client.xlen(key) >= 1
    assert not redis_client.exists(streams.stream_key(streams.METRICS))  # nothing on the unsharded key
    redis_client.xadd(streams.shard_key(streams.METRICS, 3, 4), {"b": b"\x01garbage"})
    summary = jobs.drain(streams.METRICS, max_seconds=30)
    assert (summary["batches"], summary["dead_lettered"], sample_count()) == (12, 1, 12)
    assert redis_client.xlen(streams.dead_letter_key_for(streams.shard_key(streams.METRICS, 3, 4))) == 1
    assert health.stream_state(redis_client, streams.METRICS)["pending"] == 0
