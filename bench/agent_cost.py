"""Measure what the agent costs a host: CPU per cycle, RSS, series per batch.

    .venv/bin/python bench/agent_cost.py [--cycles 50] [--redis-url redis://127.0.0.1:6379/0]
    .venv/bin/python bench/agent_cost.py --signing [--cycles 100]   # signed vs unsigned, same run

One cycle is collect + encode + XADD, the work the agent does every interval. CPU time is
``time.process_time`` (user + system of this process) around each cycle, reported as the
median; a per-collector breakdown follows. RSS is that of a real ``fleetwatch-agent``
process after a few cycles. Everything goes to a throwaway stream key, deleted afterwards.
Targets: <= 3 ms CPU per cycle, <= 40 MB RSS.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil
import redis

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.collectors import REGISTRY  # noqa: E402
from agent.collectors.connections import (  # noqa: E402
    STATES_EVERY_SECONDS,
    count_netlink_tcp_states,
    count_proc_tcp_states,
    count_psutil_tcp_states,
    read_curr_estab,
)
from agent.config import load_config  # noqa: E402
from agent.runner import MetricsAgent  # noqa: E402
from shared import streams  # noqa: E402

TARGET_CPU_MS = 3.0
TARGET_RSS_MB = 40.0
CYCLE_GAP_SECONDS = 0.1  # the cpu collector needs this much between samples


def cpu_ms(call) -> float:
    started = time.process_time()
    call()
    return (time.process_time() - started) * 1000.0


def measure_cycles(redis_url: str, prefix: str, cycles: int, state_dir: str) -> float:
    env = {
        "FLEETWATCH_AGENT_STATE_DIR": state_dir,
        "FLEETWATCH_AGENT_REDIS_URL": redis_url,
        "FLEETWATCH_STREAM_PREFIX": prefix,
    }
    agent = MetricsAgent(load_config(None, env=env, available_collectors=list(REGISTRY)))
    for _ in range(3):  # warm-up: first reads, connection set-up
        agent.run_once()
        time.sleep(CYCLE_GAP_SECONDS)
    samples, sizes = [], []
    for _ in range(cycles):
        samples.append(cpu_ms(agent.run_once))
        time.sleep(CYCLE_GAP_SECONDS)
    batch = agent.build_batch()
    sizes.append(len(batch))
    per_collector = {c.name: [] for c in agent.collectors.collectors}
    for _ in range(min(cycles, 20)):
        now = time.time()
        for collector in agent.collectors.collectors:
            per_collector[collector.name].append(cpu_ms(lambda c=collector, t=now: c.collect(t)))
        time.sleep(CYCLE_GAP_SECONDS)
    series = len(agent.collectors.collect(time.time())) + len(agent.self_metrics(time.time()))
    delivered = agent.transport.batches_sent_total
    agent.close()
    print(f"cycles measured:            {cycles} (delivered {delivered} batches to Redis)")
    print(f"CPU per cycle (median):     {statistics.median(samples):.2f} ms   target <= {TARGET_CPU_MS} ms")
    print("  (cycles without the once-a-minute TCP state walk; its amortised share is printed below)")
    print(f"CPU per cycle (p90):        {statistics.quantiles(samples, n=10)[-1]:.2f} ms")
    print(f"series per batch:           {series}")
    print(f"batch size:                 {sizes[0]} bytes (msgpack)")
    print("CPU per collector (median):")
    for name, values in per_collector.items():
        print(f"  {name:<12} {statistics.median(values):.3f} ms")
    return statistics.median(samples)


def measure_signing(redis_url: str, prefix: str, cycles: int) -> None:
    """CPU per cycle of an agent signing its batches and one that does not, cycles interleaved."""
    from shared.signing import Credential, Signer

    credential = Credential("0123456789abcdef", "s" * 43)
    agents = {}
    with tempfile.TemporaryDirectory() as signed_dir, tempfile.TemporaryDirectory() as plain_dir:
        for name, state_dir, cred in (("signed", signed_dir, str(credential)), ("unsigned", plain_dir, "")):
            env = {
                "FLEETWATCH_AGENT_STATE_DIR": state_dir,
                "FLEETWATCH_AGENT_REDIS_URL": redis_url,
                "FLEETWATCH_STREAM_PREFIX": prefix,
                "FLEETWATCH_AGENT_CREDENTIAL": cred,
            }
            agents[name] = MetricsAgent(load_config(None, env=env, available_collectors=list(REGISTRY)))
        assert agents["signed"].config.credential and not agents["unsigned"].config.credential
        samples: dict[str, list[float]] = {name: [] for name in agents}
        order = list(agents.items())
        for index in range(cycles + 3):
            order.reverse()  # neither agent always runs first after the pause
            for name, agent in order:
                spent = cpu_ms(agent.run_once)
                if index >= 3:  # warm-up cycles left out
                    samples[name].append(spent)
            time.sleep(CYCLE_GAP_SECONDS)
        batch = agents["signed"].build_batch()
        for agent in agents.values():
            agent.close()
    signer = Signer(credential)
    rounds = 2000
    started = time.process_time()
    for _ in range(rounds):
        signer.fields(batch)
    sign_us = (time.process_time() - started) / rounds * 1e6
    signed, unsigned = statistics.median(samples["signed"]), statistics.median(samples["unsigned"])
    print(f"cycles per agent:           {cycles} (interleaved, same run)")
    print(f"CPU per cycle, unsigned:    {unsigned:.3f} ms (median)")
    print(f"CPU per cycle, signed:      {signed:.3f} ms (median)   difference {signed - unsigned:+.3f} ms")
    print(f"HMAC-SHA256 of one {len(batch)}-byte batch: {sign_us:.1f} us (Signer.fields, {rounds} rounds)")


def measure_tcp_readers(interval: float = 10.0) -> float:
    """Compare the ways of counting TCP states; the chosen one runs once per STATES_EVERY_SECONDS."""
    netlink = statistics.median(cpu_ms(count_netlink_tcp_states) for _ in range(20))
    proc = statistics.median(cpu_ms(count_proc_tcp_states) for _ in range(20))
    estab = statistics.median(cpu_ms(read_curr_estab) for _ in range(20))
    try:
        via_psutil = statistics.median(cpu_ms(count_psutil_tcp_states) for _ in range(20))
    except psutil.AccessDenied:
        via_psutil = float("nan")
    print("TCP state counting (median CPU per call):")
    print(f"  netlink sock_diag          {netlink:.3f} ms  (used, once per {STATES_EVERY_SECONDS:.0f} s)")
    print(f"  /proc/net/tcp + tcp6       {proc:.3f} ms  (fallback)")
    print(f"  psutil.net_connections     {via_psutil:.3f} ms  ({via_psutil / netlink:.1f}x netlink)")
    print(f"  /proc/net/snmp CurrEstab   {estab:.3f} ms  (every cycle)")
    cycles_per_walk = STATES_EVERY_SECONDS / interval
    print(
        f"  walk amortised over {cycles_per_walk:.0f} cycles at a {interval:.0f} s interval: "
        f"{netlink / cycles_per_walk:.2f} ms/cycle"
    )
    return netlink / cycles_per_walk


def measure_rss(redis_url: str, prefix: str, state_dir: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETWATCH_")}
    env.update(
        {
            "FLEETWATCH_AGENT_STATE_DIR": state_dir,
            "FLEETWATCH_AGENT_REDIS_URL": redis_url,
            "FLEETWATCH_STREAM_PREFIX": prefix,
            "FLEETWATCH_AGENT_INTERVAL": "0.5",
        }
    )
    script = Path(sys.executable).with_name("fleetwatch-agent")
    process = subprocess.Popen([str(script)], env=env, stderr=subprocess.DEVNULL)
    try:
        time.sleep(4.0)
        info = psutil.Process(process.pid).memory_full_info()
        cpu = psutil.Process(process.pid).cpu_times()
    finally:
        process.terminate()
        process.wait(timeout=20)
    rss_mb, uss_mb = info.rss / 2**20, info.uss / 2**20
    print(f"agent process RSS:          {rss_mb:.1f} MB (USS {uss_mb:.1f} MB)   target <= {TARGET_RSS_MB} MB")
    print(
        "agent process CPU incl. start-up over 4 s at 0.5 s interval: "
        f"{(cpu.user + cpu.system) * 1000:.0f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=50)
    parser.add_argument("--signing", action="store_true", help="only compare signed and unsigned cycles")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(args.redis_url)
    try:
        if args.signing:
            measure_signing(args.redis_url, prefix, args.cycles)
            return 0
        with tempfile.TemporaryDirectory() as state_dir:
            cycle = measure_cycles(args.redis_url, prefix, args.cycles, state_dir)
        walk = measure_tcp_readers()
        print(f"CPU per cycle incl. amortised TCP walk: {cycle + walk:.2f} ms   target <= {TARGET_CPU_MS} ms")
        with tempfile.TemporaryDirectory() as state_dir:
            measure_rss(args.redis_url, prefix, state_dir)
    finally:
        client.delete(streams.stream_key(streams.METRICS, prefix))
        client.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
