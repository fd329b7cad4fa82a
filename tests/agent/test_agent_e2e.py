"""The real agent process against a private redis-server that goes away and comes back."""

from __future__ import annotations

import json
import time

import pytest

from agent.config import DEFAULT_SPOOL_CAP
from agent.spool import Spool
from shared.wire import decode_batch
from tests.agent.conftest import agent_env, wait_until

PREFIX = "e2e"
STREAM = f"{PREFIX}:stream:metrics"
FAST = {
    "FLEETWATCH_STREAM_PREFIX": PREFIX,
    "FLEETWATCH_AGENT_INTERVAL": "0.1",
    "FLEETWATCH_AGENT_COLLECTORS": "cpu,memory,load",
}

pytestmark = pytest.mark.slow


def stream_batches(server):
    return [decode_batch(fields[b"b"]) for _, fields in server.client().xrange(STREAM)]


def self_metric(batch, name: str) -> float:
    return next(s.points[0][1] for s in batch.all_series() if s.name == name)


def test_batches_sent_while_redis_restarts_arrive_exactly_once_and_in_order(
    state_dir, private_redis, start_agent
):
    agent = start_agent(agent_env(state_dir, private_redis.url, **FAST))
    wait_until(lambda: len(stream_batches(private_redis)) >= 5)
    private_redis.stop()
    time.sleep(1.5)  # about 15 batches go to the spool
    private_redis.start()
    wait_until(lambda: len(stream_batches(private_redis)) >= 30)
    code, stderr = agent.stop()
    assert code == 0, stderr
    batches = stream_batches(private_redis)
    seqs = [b.seq for b in batches]
    assert seqs == list(range(len(seqs))), "each batch exactly once, in order"
    assert len({b.epoch for b in batches}) == 1
    assert max(self_metric(b, "agent_spool_batches") for b in batches) >= 5
    assert max(self_metric(b, "agent_send_errors_total") for b in batches) >= 5
    assert "spooling batches to disk" in stderr
    assert self_metric(batches[-1], "agent_batches_sent_total") == len(batches) - 1
    state = json.loads((state_dir / "sequence-metrics.json").read_text())
    assert state["next"] == len(batches), "a clean stop records the exact next sequence number"


def test_spool_survives_an_agent_restart_and_is_replayed_oldest_first(state_dir, private_redis, start_agent):
    private_redis.stop()
    env = agent_env(state_dir, private_redis.url, **FAST)
    offline = start_agent(env)
    spool_path = state_dir / "spool" / "metrics"
    wait_until(lambda: list(spool_path.glob("*.seg")))
    time.sleep(1.0)
    code, stderr = offline.stop()
    assert code == 0, stderr
    assert "stay in the spool for the next start" in stderr
    spooled = Spool(spool_path, DEFAULT_SPOOL_CAP).pending_batches
    assert spooled >= 5
    private_redis.start()
    restarted_at = time.time()
    online = start_agent(env)
    wait_until(lambda: len(stream_batches(private_redis)) >= spooled + 5)
    online.stop()
    batches = stream_batches(private_redis)
    seqs = [b.seq for b in batches]
    assert seqs == list(range(len(seqs))), (
        "spooled batches first, then the new ones, no gap across a clean restart"
    )
    assert all(b.sent_at < restarted_at for b in batches[:spooled]), "the spooled batches come first"
    assert all(b.sent_at > restarted_at for b in batches[spooled:])


def test_full_spool_drops_the_oldest_batches_and_reports_the_count(state_dir, private_redis, start_agent):
    private_redis.stop()
    env = agent_env(state_dir, private_redis.url, FLEETWATCH_AGENT_SPOOL_CAP_BYTES="20000", **FAST)
    agent = start_agent(env)
    # batches of ~2 KB against a 20 KB cap; the spool writes its cursor when it drops its oldest segment
    wait_until(lambda: (state_dir / "spool" / "metrics" / "cursor.json").exists(), timeout=30)
    private_redis.start()
    wait_until(
        lambda: any(self_metric(b, "agent_spool_batches") == 0 for b in stream_batches(private_redis)[3:])
    )
    code, stderr = agent.stop()
    assert code == 0, stderr
    batches = stream_batches(private_redis)
    seqs = [b.seq for b in batches]
    dropped = int(self_metric(batches[-1], "agent_spool_dropped_batches_total"))
    assert dropped > 0
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert seqs[0] == dropped, "exactly the oldest batches are missing"
    assert seqs == list(range(dropped, dropped + len(seqs)))
    assert "spool reached its 20000-byte cap" in stderr


def test_logs_table_in_the_config_starts_the_log_shipper_beside_the_metrics_loop(
    tmp_path, state_dir, private_redis, start_agent
):
    app_log = tmp_path / "app.log"
    app_log.write_text("")
    config = tmp_path / "agent.toml"
    config.write_text(
        f"""
[logs]
socket_enabled = false
poll_interval = 0.1
flush_interval = 0.2
files = [{{ paths = ["{app_log}"], format = "json", service = "shop" }}]
"""
    )
    agent = start_agent(agent_env(state_dir, private_redis.url, FLEETWATCH_AGENT_CONFIG=str(config), **FAST))
    wait_until(lambda: len(stream_batches(private_redis)) >= 3)
    with app_log.open("a") as handle:
        handle.write(
            '{"level": "ERROR", "message": "disk full"}\n{"level": "INFO", "message": "recovered"}\n'
        )

    def shipped_messages() -> list[str]:
        entries = private_redis.client().xrange(f"{PREFIX}:stream:logs")
        return [r["message"] for _, fields in entries for r in decode_batch(fields[b"b"]).logs]

    assert wait_until(lambda: shipped_messages() if len(shipped_messages()) >= 2 else None) == [
        "disk full",
        "recovered",
    ]
    code, stderr = agent.stop()
    assert code == 0, stderr
    assert (state_dir / "spool" / "logs").is_dir()
