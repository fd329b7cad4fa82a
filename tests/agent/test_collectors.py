"""Each collector on the real host returns sane values with the names fixed in docs/contracts.md."""

from __future__ import annotations

import logging
import re
import socket
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from agent.collectors import REGISTRY, Collector, CollectorSet
from agent.collectors.connections import (
    ALL_STATES,
    INET_DIAG_REQ,
    SOCK_DIAG_BY_FAMILY,
    TCP_STATES,
    ConnectionsCollector,
    ProcessesCollector,
    _dump,
    count_netlink_tcp_states,
    count_proc_tcp_states,
)
from agent.collectors.cpu import CpuCollector
from agent.collectors.disk import (
    PSEUDO_FSTYPES,
    DiskIOCollector,
    DiskUsageCollector,
    read_proc_diskstats,
    read_psutil_disk_io,
)
from agent.collectors.gpu import GpuCollector
from agent.collectors.memory import MemoryCollector, SwapCollector, read_memory, read_swap
from agent.collectors.network import NetworkCollector, read_proc_net_dev, read_psutil_net_io
from shared.wire import COUNTER, GAUGE, METRIC_NAME_RE

CONTRACT = (Path(__file__).resolve().parents[2] / "docs" / "contracts.md").read_text()
CONTRACT_NAMES = set(re.findall(r"`((?:system|gpu|agent)_[a-z0-9_]+)", CONTRACT))


def values(series: list[dict], name: str, **labels: str) -> list[float]:
    return [
        s["points"][0][1]
        for s in series
        if s["name"] == name and all(s["labels"].get(k) == v for k, v in labels.items())
    ]


def gpu_available() -> bool:
    return GpuCollector().enabled


def test_every_collector_emits_contract_names_with_one_point_stamped_now():
    now = time.time()
    collectors = CollectorSet([cls() for name, cls in REGISTRY.items() if name != "gpu"])
    series = collectors.collect(now)
    assert collectors.failing == set()
    assert {s["name"] for s in series} <= CONTRACT_NAMES
    for item in series:
        assert METRIC_NAME_RE.match(item["name"])
        assert item["type"] == (COUNTER if item["name"].endswith("_total") else GAUGE), item
        assert item["points"] == [[now, item["points"][0][1]]]
        assert all(isinstance(v, str) for v in item["labels"].values())


# Series sent only when there is something to say (a failed unit).
SOMETIMES_ABSENT = {"system_systemd_unit_failed"}


def test_every_collector_documents_each_metric_it_emits():
    collectors = {name: cls() for name, cls in REGISTRY.items()}
    sum(i * i for i in range(300_000))  # CPU for the process walk to see since the collectors started
    now = time.time()
    for name, collector in collectors.items():
        assert collector.description, name
        if getattr(collector, "enabled", True) is False:  # gpu, systemd, pressure off on this host
            assert collector.collect(now) == [], name
            continue
        emitted = {s["name"] for s in collector.collect(now)}
        assert emitted <= set(collector.fields), name
        assert emitted >= set(collector.fields) - SOMETIMES_ABSENT, name


def test_cpu_total_and_each_core_are_percentages_and_cores_match_cpu_count():
    collector = CpuCollector()
    sum(i * i for i in range(200_000))  # some work, so the sample is not all idle
    series = collector.collect(time.time())
    total = [s for s in series if not s["labels"]]
    cores = [s for s in series if "core" in s["labels"]]
    assert len(total) == 1
    assert len(cores) == psutil.cpu_count()
    assert sorted(int(s["labels"]["core"]) for s in cores) == list(range(psutil.cpu_count()))
    for item in series:
        assert 0.0 <= item["points"][0][1] <= 100.0


def test_memory_total_is_positive_and_used_plus_available_is_total():
    series = MemoryCollector().collect(time.time())
    total = values(series, "system_memory_total_bytes")[0]
    used = values(series, "system_memory_used_bytes")[0]
    available = values(series, "system_memory_available_bytes")[0]
    assert total > 0
    assert used + available == total
    assert 0.0 <= values(series, "system_memory_usage_percent")[0] <= 100.0


def test_swap_reports_percent_and_bytes():
    series = SwapCollector().collect(time.time())
    assert 0.0 <= values(series, "system_swap_usage_percent")[0] <= 100.0
    assert values(series, "system_swap_used_bytes")[0] >= 0


def test_disk_usage_covers_root_filesystem_and_no_pseudo_filesystem():
    series = DiskUsageCollector().collect(time.time())
    assert series, "no real filesystem found"
    assert not {s["labels"]["fstype"] for s in series} & PSEUDO_FSTYPES
    root = [s for s in series if s["labels"]["mountpoint"] == "/"]
    if root:
        usage = psutil.disk_usage("/")
        assert values(root, "system_disk_used_bytes")[0] == pytest.approx(usage.used, rel=0.05)
    devices = [s["labels"]["device"] for s in series if s["name"] == "system_disk_used_bytes"]
    assert len(devices) == len(set(devices)), "a device was reported twice"
    for value in values(series, "system_disk_usage_percent"):
        assert 0.0 <= value <= 100.0


def test_disk_io_are_counters_per_device_without_loop_devices():
    series = DiskIOCollector().collect(time.time())
    assert all(s["type"] == (COUNTER if s["name"].endswith("_total") else GAUGE) for s in series)
    assert not [s for s in series if s["labels"]["device"].startswith(("loop", "ram", "zram"))]
    for value in values(series, "system_disk_read_bytes_total"):
        assert value >= 0


def test_diskstats_reader_matches_psutil_for_every_device():
    ours = read_proc_diskstats()
    theirs = read_psutil_disk_io()
    assert set(theirs) <= set(ours)
    for device, (read_bytes, written_bytes, reads, writes) in theirs.items():
        # both read the same live table; a write may land between the two reads
        assert ours[device][2] == pytest.approx(reads, abs=50) and ours[device][3] == pytest.approx(
            writes, abs=50
        )
        assert ours[device][0] == pytest.approx(read_bytes, abs=50 * 2**20)
        assert ours[device][1] == pytest.approx(written_bytes, abs=50 * 2**20)


def test_memory_and_swap_readers_match_psutil():
    total, available = read_memory()
    mem = psutil.virtual_memory()
    assert total == mem.total
    assert available == pytest.approx(mem.available, abs=64 * 2**20)
    swap_total, swap_used = read_swap()
    swap = psutil.swap_memory()
    assert swap_total == swap.total
    assert swap_used == pytest.approx(swap.used, abs=2**20)


def test_net_dev_reader_matches_psutil_for_every_interface():
    ours = read_proc_net_dev()
    theirs = read_psutil_net_io()
    assert set(ours) == set(theirs)
    for name, counters in theirs.items():
        assert ours[name].errin == counters.errin and ours[name].errout == counters.errout
        assert ours[name].bytes_recv == pytest.approx(counters.bytes_recv, abs=10 * 2**20)
        assert ours[name].packets_sent == pytest.approx(counters.packets_sent, abs=10_000)


def test_network_totals_sum_every_interface_except_loopback():
    series = NetworkCollector().collect(time.time())
    per_interface = [s for s in series if s["name"] == "system_network_bytes_recv_total" and s["labels"]]
    total = values([s for s in series if not s["labels"]], "system_network_bytes_recv_total")
    assert {s["labels"]["interface"] for s in per_interface} == set(psutil.net_io_counters(pernic=True))
    non_loopback = sum(
        s["points"][0][1] for s in per_interface if not s["labels"]["interface"].startswith("lo")
    )
    assert len(total) == 1
    # counters grow between the two reads only if traffic flowed; the sum is of the same snapshot
    assert total[0] == non_loopback
    assert {s["labels"]["direction"] for s in series if s["name"] == "system_network_errors_total"} == {
        "in",
        "out",
    }


def test_tcp_connections_counts_a_listener_and_established_pairs_opened_by_the_test():
    before = ConnectionsCollector().collect(time.time())
    listener = socket.create_server(("127.0.0.1", 0))
    pairs = []
    for _ in range(5):
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        pairs.append((client, server))
    try:
        after = ConnectionsCollector().collect(time.time())
    finally:
        for client, server in pairs:
            client.close()
            server.close()
        listener.close()
    assert values(after, "system_tcp_connections", state="listen")[0] >= 1
    # 10 established sockets (both ends of 5 loopback connections) that did not exist before
    assert values(after, "system_connections_active")[0] >= 10
    assert values(after, "system_tcp_connections", state="established")[0] >= 10
    assert len([s for s in before if s["name"] == "system_tcp_connections"]) == 12


def test_per_state_counts_are_sampled_once_a_minute_and_active_count_every_cycle():
    collector = ConnectionsCollector()
    first = collector.collect(time.time())
    second = collector.collect(time.time())
    assert len([s for s in first if s["name"] == "system_tcp_connections"]) == len(TCP_STATES)
    assert [s["name"] for s in second] == ["system_connections_active"]


def test_netlink_and_proc_table_readers_agree_on_a_listener_opened_by_the_test():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port_hex = f":{listener.getsockname()[1]:04X} "
        via_netlink = count_netlink_tcp_states()
        via_proc = count_proc_tcp_states()
        per_family: Counter[str] = Counter()  # the fallback request: one dump per family
        for family in (socket.AF_INET, socket.AF_INET6):
            request = INET_DIAG_REQ.pack(family, socket.IPPROTO_TCP, 0, 0, ALL_STATES)
            _dump(SOCK_DIAG_BY_FAMILY, request, per_family)
        with open("/proc/net/tcp") as table:
            assert any(port_hex in line and line.split()[3] == "0A" for line in table)
    assert via_netlink["listen"] >= 1
    assert via_proc["listen"] >= 1
    assert set(via_netlink) <= set(TCP_STATES.values())
    assert abs(via_netlink["listen"] - via_proc["listen"]) <= 2
    assert abs(via_netlink["listen"] - per_family["listen"]) <= 2
    assert per_family["listen"] >= 1


def test_process_count_is_close_to_psutil_pids():
    series = ProcessesCollector().collect(time.time())
    assert abs(values(series, "system_processes")[0] - len(psutil.pids())) < 50
    assert values(series, "system_processes")[0] > 1


def test_gpu_collector_switches_itself_off_with_one_log_line_on_a_host_without_nvidia(caplog):
    caplog.set_level(logging.INFO, logger="agent.collectors.gpu")
    collector = GpuCollector()
    if collector.enabled:
        pytest.skip("this host has a working NVIDIA driver; see the GPU-host test")
    lines = [r for r in caplog.records if r.name == "agent.collectors.gpu"]
    assert len(lines) == 1
    assert "GPU collector off" in lines[0].getMessage()
    assert collector.collect(time.time()) == []
    assert collector.collect(time.time()) == []
    assert len([r for r in caplog.records if r.name == "agent.collectors.gpu"]) == 1


def test_gpu_collector_reports_each_gpu_on_a_gpu_host():
    collector = GpuCollector()
    if not collector.enabled:
        pytest.skip(f"no NVIDIA GPU here ({collector.reason})")
    series = collector.collect(time.time())
    assert values(series, "gpu_memory_total_bytes")[0] > 0
    for value in values(series, "gpu_utilization_percent"):
        assert 0.0 <= value <= 100.0


class BrokenCollector(Collector):
    name = "broken"
    description = "raises every other time it is asked"
    fields = {"system_processes": "never emitted"}

    def __init__(self, failures: int) -> None:
        self.failures = failures

    def collect(self, now: float) -> list[dict]:
        if self.failures > 0:
            self.failures -= 1
            raise psutil.AccessDenied(pid=1, msg="not allowed")
        return [{"name": "system_processes", "type": GAUGE, "labels": {}, "points": [[now, 1.0]]}]


def test_failing_collector_logs_once_and_the_others_still_report(caplog):
    caplog.set_level(logging.INFO, logger="agent.collectors")
    collectors = CollectorSet([BrokenCollector(failures=3), MemoryCollector()])
    for _ in range(3):
        series = collectors.collect(time.time())
        assert values(series, "system_memory_total_bytes")[0] > 0
        assert not values(series, "system_processes")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "broken" in warnings[0].getMessage() and "AccessDenied" in warnings[0].getMessage()
    assert collectors.errors_total == {"broken": 3, "memory": 0}
    series = collectors.collect(time.time())
    assert values(series, "system_processes") == [1.0]
    assert any("works again" in r.getMessage() for r in caplog.records)
