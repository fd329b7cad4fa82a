"""Measure what the agent costs a host, next to node_exporter in the same run.

    .venv/bin/python bench/agent_cost.py [--cycles 50] [--redis-url redis://127.0.0.1:6379/0] [--port 21810]
    .venv/bin/python bench/agent_cost.py --signing [--cycles 100]   # signed vs unsigned, same run

One cycle is collect + encode + XADD, the work the agent does every interval. CPU time is
``time.process_time`` (user + system of this process) around each cycle, reported as the
median; a per-collector breakdown follows, then the walks that run once a minute (TCP states,
the process table, systemd) with their share amortised over a 10 s interval. RSS is that of a
real ``fleetwatch-agent`` process after a few cycles. Everything goes to a throwaway stream
key, deleted afterwards.

node_exporter (Debian's ``prometheus-node-exporter``, default collectors) is started on
``--port`` (127.0.0.1), scraped in blocks that alternate with the agent's cycles, and its CPU
per scrape is the growth of the summed ``/proc/<pid>/task/*/schedstat`` run times (every Go
thread, nanoseconds) over a block divided by the scrapes in it, median over the blocks. Scrapes
ask for plain text (no gzip), which spares node_exporter the compression Prometheus asks for.
Targets: agent CPU per cycle <= 1/4 of node_exporter's per scrape, <= 40 MB RSS.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
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
from agent.collectors.systemd import SystemdCollector, list_units  # noqa: E402
from agent.collectors.topprocs import read_processes  # noqa: E402
from agent.config import load_config  # noqa: E402
from agent.runner import MetricsAgent  # noqa: E402
from shared import streams  # noqa: E402

TARGET_RATIO = 0.25  # agent CPU per cycle / node_exporter CPU per scrape
TARGET_RSS_MB = 40.0
CYCLE_GAP_SECONDS = 0.1  # the cpu collector needs this much between samples
NODE_EXPORTER = "prometheus-node-exporter"
BLOCKS = 5
AGENT_INTERVAL = 10.0  # the default interval, for amortising the once-a-minute walks


def cpu_ms(call) -> float:
    started = time.process_time()
    call()
    return (time.process_time() - started) * 1000.0


class NodeExporter:
    """node_exporter on 127.0.0.1:port, scraped over HTTP; CPU read from its threads' schedstat."""

    def __init__(self, port: int) -> None:
        binary = shutil.which(NODE_EXPORTER) or shutil.which("node_exporter")
        if binary is None:
            raise SystemExit(f"{NODE_EXPORTER} is not installed: apt-get install -y {NODE_EXPORTER}")
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.process = subprocess.Popen(
            [binary, f"--web.listen-address=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                self.body = self.scrape()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"node_exporter did not answer on port {port} (in use?)") from None
                time.sleep(0.1)

    def scrape(self) -> bytes:
        with urllib.request.urlopen(self.url, timeout=10) as response:
            return response.read()

    def cpu_ns(self) -> int:
        """Nanoseconds on CPU of all the process's threads (the first field of each schedstat)."""
        total = 0
        for path in glob.glob(f"/proc/{self.process.pid}/task/*/schedstat"):
            with contextlib.suppress(OSError), open(path) as handle:
                total += int(handle.read().split()[0])
        return total

    def series(self) -> tuple[int, int]:
        """(all sample lines, node_* sample lines) of the last scrape."""
        lines = [line for line in self.body.decode().splitlines() if line and not line.startswith("#")]
        return len(lines), sum(1 for line in lines if line.startswith("node_"))

    def rss_mb(self) -> float:
        return psutil.Process(self.process.pid).memory_info().rss / 2**20

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@contextlib.contextmanager
def node_exporter(port: int) -> Iterator[NodeExporter]:
    exporter = NodeExporter(port)
    try:
        yield exporter
    finally:
        exporter.stop()


def measure_cycles(redis_url: str, prefix: str, cycles: int, state_dir: str, exporter: NodeExporter) -> dict:
    """Agent cycles and node_exporter scrapes in alternating blocks; return the figures."""
    env = {
        "FLEETWATCH_AGENT_STATE_DIR": state_dir,
        "FLEETWATCH_AGENT_REDIS_URL": redis_url,
        "FLEETWATCH_STREAM_PREFIX": prefix,
    }
    agent = MetricsAgent(load_config(None, env=env, available_collectors=list(REGISTRY)))
    for _ in range(3):  # warm-up: first reads, connection set-up, the first process walk
        agent.run_once()
        exporter.scrape()
        time.sleep(CYCLE_GAP_SECONDS)
    samples: list[float] = []
    node_blocks: list[float] = []
    per_block = max(1, cycles // BLOCKS)
    for _ in range(BLOCKS):
        for _ in range(per_block):
            samples.append(cpu_ms(agent.run_once))
            time.sleep(CYCLE_GAP_SECONDS)
        before = exporter.cpu_ns()
        for _ in range(per_block):
            exporter.scrape()
            time.sleep(CYCLE_GAP_SECONDS)
        node_blocks.append((exporter.cpu_ns() - before) / per_block / 1e6)
    batch = agent.build_batch()
    per_collector: dict[str, list[float]] = {c.name: [] for c in agent.collectors.collectors}
    order = list(agent.collectors.collectors)
    shuffler = random.Random(13)
    for _ in range(min(cycles, 20)):
        now = time.time()
        shuffler.shuffle(order)  # the first after the pause runs on cold caches: not always the same one
        for collector in order:
            per_collector[collector.name].append(cpu_ms(lambda c=collector, t=now: c.collect(t)))
        time.sleep(CYCLE_GAP_SECONDS)
    series = len(agent.collectors.collect(time.time())) + len(agent.self_metrics(time.time()))
    # every series once, the once-a-minute ones included: force each collector's walk now
    full = fresh_series_count() + len(agent.self_metrics(time.time()))
    delivered = agent.transport.batches_sent_total
    agent.close()
    node_all, node_own = exporter.series()
    figures = {
        "cycle": statistics.median(samples),
        "p90": statistics.quantiles(samples, n=10)[-1],
        "series_cycle": series,
        "series_full": full,
        "node_scrape": statistics.median(node_blocks),
        "node_series": node_all,
        "node_own": node_own,
    }
    print(f"cycles measured:            {len(samples)} (delivered {delivered} batches to Redis)")
    print(f"CPU per cycle (median):     {figures['cycle']:.2f} ms")
    print("  (cycles without the once-a-minute walks; their amortised share is printed below)")
    print(f"CPU per cycle (p90):        {figures['p90']:.2f} ms")
    print(
        f"series per batch:           {series} in a plain cycle, {full} when the once-a-minute ones are due"
    )
    print(f"batch size:                 {len(batch)} bytes (msgpack)")
    print("CPU per collector (median of a plain cycle):")
    for name, values in per_collector.items():
        print(f"  {name:<14} {statistics.median(values):.3f} ms")
    print(
        f"node_exporter CPU per scrape: {figures['node_scrape']:.2f} ms (median of {BLOCKS} blocks of "
        f"{per_block}; blocks: {', '.join(f'{v:.2f}' for v in node_blocks)})"
    )
    print(f"node_exporter series:       {node_all} ({node_own} node_*, the rest its own go_/process_)")
    return figures


def fresh_series_count() -> int:
    """Series of one batch in which every collector reports (fresh collectors: all walks due)."""
    collectors = [cls() for cls in REGISTRY.values()]
    try:
        return sum(len(c.collect(time.time())) for c in collectors)
    finally:
        for collector in collectors:
            collector.close()


def measure_walks(interval: float = AGENT_INTERVAL) -> float:
    """The collectors' once-a-minute work: return its CPU per cycle, amortised over ``interval``."""
    processes = len(read_processes("/proc"))
    walks = {
        f"process walk ({processes} procs)": statistics.median(
            cpu_ms(lambda: read_processes("/proc")) for _ in range(20)
        )
    }
    systemd = SystemdCollector()
    if systemd.enabled:
        walks["systemd ListUnits"] = statistics.median(
            cpu_ms(lambda: list_units(systemd.bus_socket)) for _ in range(5)
        )
    amortised = 0.0
    print(
        f"once-a-minute work (median CPU per walk), amortised over {60 / interval:.0f} cycles of {interval:.0f} s:"
    )
    for name, spent in walks.items():
        share = spent * interval / 60.0
        amortised += share
        print(f"  {name:<28} {spent:.3f} ms  -> {share:.2f} ms/cycle")
    if not systemd.enabled:
        print(f"  systemd                      off here ({systemd.reason})")
    return amortised


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


# opentelemetry-sdk is in this venv for the server's tests only (pyproject's test extra); redis-py >= 8
# imports it when it is there. A host's install (fleetwatch[agent], the image's [agent,server]) lacks it.
WITHOUT_TEST_ONLY_SDK = (
    "import sys; sys.modules['opentelemetry.sdk'] = None; "
    "from agent.cli import main; raise SystemExit(main())"
)


def measure_rss(redis_url: str, prefix: str, state_dir: str, host_install: bool) -> float:
    """RSS of a real agent process after 4 s at a 0.5 s interval; return it in MB."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETWATCH_")}
    env.update(
        {
            "FLEETWATCH_AGENT_STATE_DIR": state_dir,
            "FLEETWATCH_AGENT_REDIS_URL": redis_url,
            "FLEETWATCH_STREAM_PREFIX": prefix,
            "FLEETWATCH_AGENT_INTERVAL": "0.5",
            "FLEETWATCH_AGENT_CONFIG": "",
            "FLEETWATCH_AGENT_SOCKET": os.path.join(state_dir, "agent.sock"),
            "PYTHONPATH": str(REPO),
        }
    )
    if host_install:
        command = [sys.executable, "-c", WITHOUT_TEST_ONLY_SDK]
        what = "as installed on a host (no test-only opentelemetry-sdk)"
    else:
        command = [str(Path(sys.executable).with_name("fleetwatch-agent"))]
        what = "in this dev venv (redis-py also loads opentelemetry-sdk)"
    process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    try:
        time.sleep(4.0)
        info = psutil.Process(process.pid).memory_full_info()
        cpu = psutil.Process(process.pid).cpu_times()
    finally:
        process.terminate()
        process.wait(timeout=20)
    rss_mb, uss_mb = info.rss / 2**20, info.uss / 2**20
    print(f"agent process RSS {what}: {rss_mb:.1f} MB (USS {uss_mb:.1f} MB)")
    print(f"  its CPU incl. start-up over 4 s at a 0.5 s interval: {(cpu.user + cpu.system) * 1000:.0f} ms")
    return rss_mb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=50)
    parser.add_argument("--signing", action="store_true", help="only compare signed and unsigned cycles")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--port", type=int, default=21810, help="port for node_exporter on 127.0.0.1")
    args = parser.parse_args()
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(args.redis_url)
    try:
        if args.signing:
            measure_signing(args.redis_url, prefix, args.cycles)
            return 0
        with node_exporter(args.port) as exporter, tempfile.TemporaryDirectory() as state_dir:
            figures = measure_cycles(args.redis_url, prefix, args.cycles, state_dir, exporter)
            node_rss = exporter.rss_mb()
        walk = measure_tcp_readers()
        walks = measure_walks()
        with tempfile.TemporaryDirectory() as state_dir:
            dev_rss = measure_rss(args.redis_url, prefix, state_dir, host_install=False)
        with tempfile.TemporaryDirectory() as state_dir:
            rss = measure_rss(args.redis_url, prefix, state_dir, host_install=True)
    finally:
        client.delete(streams.stream_key(streams.METRICS, prefix))
        client.close()
    per_cycle = figures["cycle"] + walk + walks
    node = figures["node_scrape"]
    agent_per_series = per_cycle / figures["series_full"] * 1000
    node_per_series = node / figures["node_series"] * 1000
    print("--- agent vs node_exporter, same run ---")
    print(
        f"agent CPU per cycle incl. amortised walks: {per_cycle:.2f} ms for {figures['series_full']} series"
    )
    print(f"node_exporter CPU per scrape:              {node:.2f} ms for {figures['node_series']} series")
    print(f"ratio per scrape (agent / node_exporter):  {per_cycle / node:.2f}   target <= {TARGET_RATIO}")
    print(
        f"ratio per series:                          {agent_per_series / node_per_series:.2f} "
        f"({agent_per_series:.1f} us vs {node_per_series:.1f} us per series)"
    )
    print(
        f"RSS: agent {rss:.1f} MB as installed on a host ({dev_rss:.1f} MB in this dev venv), "
        f"node_exporter {node_rss:.1f} MB   target agent <= {TARGET_RSS_MB} MB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
