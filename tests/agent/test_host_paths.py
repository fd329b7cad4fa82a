"""FLEETWATCH_AGENT_PROCFS and FLEETWATCH_AGENT_HOSTFS: the collectors read the host through them.

Each test builds a fake procfs (copies of this machine's files, some values changed) and a fake
host root in tmp_path, and checks the collectors report what is there, not what /proc says.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from agent.collectors import build_collectors
from agent.collectors.connections import ConnectionsCollector, ProcessesCollector
from agent.collectors.cpu import CpuCollector
from agent.collectors.disk import DiskIOCollector, DiskUsageCollector
from agent.collectors.hostpaths import HostPaths
from agent.collectors.memory import MemoryCollector, SwapCollector
from agent.collectors.mounts import host_mounts, unescape
from agent.collectors.network import NetworkCollector
from agent.config import ConfigError, load_config
from agent.runner import MetricsAgent
from shared.wire_v2 import readable, series_maps
from tests.agent.conftest import AGENT_SCRIPT, REPO, agent_env

FAKE_MEM_TOTAL_KIB = 123456789
FAKE_MEM_AVAILABLE_KIB = 23456789
FAKE_SWAP_TOTAL_KIB = 4000
FAKE_SWAP_FREE_KIB = 1000
FAKE_CURR_ESTAB = 4321


def values(series: list[dict], name: str, **labels: str) -> list[float]:
    return [
        s["points"][0][1]
        for s in series
        if s["name"] == name and all(s["labels"].get(k) == v for k, v in labels.items())
    ]


def write_meminfo(procfs: Path) -> None:
    """Copy /proc/meminfo with MemTotal, MemAvailable and swap set to known values."""
    wanted = {
        "MemTotal:": FAKE_MEM_TOTAL_KIB,
        "MemAvailable:": FAKE_MEM_AVAILABLE_KIB,
        "SwapTotal:": FAKE_SWAP_TOTAL_KIB,
        "SwapFree:": FAKE_SWAP_FREE_KIB,
    }
    lines = []
    for line in Path("/proc/meminfo").read_text().splitlines():
        key = line.split()[0]
        lines.append(f"{key:<16}{wanted[key]:>8} kB" if key in wanted else line)
    (procfs / "meminfo").write_text("\n".join(lines) + "\n")


def write_net_dev(procfs: Path) -> None:
    """Copy /proc/net/dev and add an interface only the fake procfs has."""
    text = Path("/proc/net/dev").read_text()
    text += "fakeeth0: 1000 10 1 0 0 0 0 0 2000 20 2 0 0 0 0 0\n"
    (procfs / "net" / "dev").write_text(text)


def write_snmp(procfs: Path) -> None:
    """Copy /proc/net/snmp with CurrEstab set to a known value."""
    lines = Path("/proc/net/snmp").read_text().splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("Tcp:"))
    names, numbers = lines[header].split(), lines[header + 1].split()
    numbers[names.index("CurrEstab")] = str(FAKE_CURR_ESTAB)
    lines[header + 1] = " ".join(numbers)
    (procfs / "net" / "snmp").write_text("\n".join(lines) + "\n")


def write_stat(procfs: Path, user: int, idle: int) -> None:
    """A /proc/stat of two CPUs with the given user and idle ticks each (psutil reads it)."""
    cpu = f"{user} 0 0 {idle} 0 0 0 0 0 0"
    total = f"{2 * user} 0 0 {2 * idle} 0 0 0 0 0 0"
    (procfs / "stat").write_text(f"cpu  {total}\ncpu0 {cpu}\ncpu1 {cpu}\nintr 0\nctxt 0\nbtime 0\n")


@pytest.fixture
def fake_host(tmp_path: Path) -> Iterator[HostPaths]:
    """A procfs with known values and a host root with two 'mounted' directories."""
    procfs = tmp_path / "proc"
    (procfs / "net").mkdir(parents=True)
    for pid in ("1", "42", "4242"):
        (procfs / pid).mkdir()
    write_meminfo(procfs)
    write_net_dev(procfs)
    write_snmp(procfs)
    write_stat(procfs, user=100, idle=900)
    shutil.copy("/proc/diskstats", procfs / "diskstats")
    with (procfs / "diskstats").open("a") as handle:
        handle.write("   8      99 fakedisk 7 0 16 0 3 0 32 0 0 0 0 0 0 0 0 0 0\n")
    shutil.copy("/proc/filesystems", procfs / "filesystems")
    hostfs = tmp_path / "hostroot"
    (hostfs / "srv" / "my data").mkdir(parents=True)
    (procfs / "1" / "mounts").write_text(
        "/dev/fakeroot / ext4 rw,relatime 0 0\n"
        "/dev/fakedata /srv/my\\040data xfs rw 0 0\n"
        "/dev/fakegone /not-in-hostfs ext4 rw 0 0\n"
        "proc /proc proc rw 0 0\n"
        "tmpfs /run tmpfs rw 0 0\n"
        "/dev/fakeroot /var/lib/bound ext4 rw 0 0\n"
    )
    saved = psutil.PROCFS_PATH
    yield HostPaths(str(procfs), str(hostfs))
    psutil.PROCFS_PATH = saved


def test_memory_and_swap_come_from_the_configured_procfs(fake_host):
    memory = MemoryCollector(fake_host).collect(time.time())
    assert values(memory, "system_memory_total_bytes") == [FAKE_MEM_TOTAL_KIB * 1024]
    assert values(memory, "system_memory_available_bytes") == [FAKE_MEM_AVAILABLE_KIB * 1024]
    swap = SwapCollector(fake_host).collect(time.time())
    assert values(swap, "system_swap_used_bytes") == [(FAKE_SWAP_TOTAL_KIB - FAKE_SWAP_FREE_KIB) * 1024]
    assert values(swap, "system_swap_usage_percent") == [75.0]


def test_network_disk_io_connections_and_processes_come_from_the_configured_procfs(fake_host):
    now = time.time()
    network = NetworkCollector(fake_host).collect(now)
    assert values(network, "system_network_bytes_recv_total", interface="fakeeth0") == [1000.0]
    assert values(network, "system_network_bytes_sent_total", interface="fakeeth0") == [2000.0]
    diskio = DiskIOCollector(fake_host).collect(now)
    assert values(diskio, "system_disk_read_bytes_total", device="fakedisk") == [16 * 512.0]
    assert values(diskio, "system_disk_writes_total", device="fakedisk") == [3.0]
    connections = ConnectionsCollector(fake_host).collect(now)
    assert values(connections, "system_connections_active") == [float(FAKE_CURR_ESTAB)]
    assert values(ProcessesCollector(fake_host).collect(now), "system_processes") == [3.0]


def test_cpu_usage_comes_from_the_procfs_given_to_psutil(fake_host):
    build_collectors([], fake_host)  # points psutil at the fake procfs, as the agent does at start
    assert fake_host.procfs == psutil.PROCFS_PATH
    collector = CpuCollector(fake_host)
    # Each CPU: 50 busy ticks and 150 idle ticks later -> 25 % busy.
    write_stat(Path(fake_host.procfs), user=150, idle=1050)
    series = collector.collect(time.time())
    assert values(series, "system_cpu_usage_percent", core="0") == [25.0]
    assert [s["points"][0][1] for s in series if not s["labels"]] == [25.0]


def test_disk_usage_stats_the_host_root_but_labels_the_host_mountpoint(fake_host):
    series = DiskUsageCollector(fake_host).collect(time.time())
    labels = sorted(
        (s["labels"]["mountpoint"], s["labels"]["device"], s["labels"]["fstype"])
        for s in series
        if s["name"] == "system_disk_used_bytes"
    )
    # /not-in-hostfs is listed but missing under the host root: skipped. proc and tmpfs are not disks.
    # /dev/fakeroot is also bound at /var/lib/bound: reported once, at its shortest mountpoint.
    assert labels == [("/", "/dev/fakeroot", "ext4"), ("/srv/my data", "/dev/fakedata", "xfs")]
    expected = psutil.disk_usage(os.path.join(fake_host.hostfs, "srv", "my data"))
    assert values(series, "system_disk_usage_percent", mountpoint="/srv/my data") == [
        pytest.approx(expected.percent, abs=1.0)
    ]


def test_host_mount_table_is_read_from_pid_1_with_escapes_undone(fake_host):
    mounts = host_mounts(fake_host)
    assert ("/dev/fakedata", "/srv/my data", "xfs") in mounts
    assert all(m.fstype not in {"proc", "tmpfs"} for m in mounts)
    assert unescape(r"/mnt/a\134b\011c") == "/mnt/a\\b\tc"


def test_procfs_and_hostfs_settings_reach_the_collectors_through_the_agent(fake_host, tmp_path):
    env = {
        "FLEETWATCH_AGENT_STATE_DIR": str(tmp_path / "state"),
        "FLEETWATCH_AGENT_PROCFS": fake_host.procfs,
        "FLEETWATCH_AGENT_HOSTFS": fake_host.hostfs + "/",
        "FLEETWATCH_AGENT_COLLECTORS": "memory,disk,processes",
    }
    config = load_config(env=env, available_collectors=["memory", "disk", "processes"])
    assert (config.procfs, config.hostfs) == (fake_host.procfs, fake_host.hostfs)
    agent = MetricsAgent(config, dry_run=True)
    try:
        batch = readable(agent.build_batch())
    finally:
        agent.close()
    series = series_maps(batch)
    assert values(series, "system_memory_total_bytes") == [FAKE_MEM_TOTAL_KIB * 1024]
    assert values(series, "system_processes") == [3.0]
    assert {s["labels"]["mountpoint"] for s in series if s["name"] == "system_disk_free_bytes"} == {
        "/",
        "/srv/my data",
    }


def test_defaults_are_this_machines_proc_and_no_host_root(tmp_path):
    config = load_config(env={"FLEETWATCH_AGENT_STATE_DIR": str(tmp_path)})
    assert (config.procfs, config.hostfs) == ("/proc", "")


@pytest.mark.parametrize("name", ["FLEETWATCH_AGENT_PROCFS", "FLEETWATCH_AGENT_HOSTFS"])
def test_missing_or_relative_directory_is_rejected_naming_the_setting(tmp_path, name):
    base = {"FLEETWATCH_AGENT_STATE_DIR": str(tmp_path)}
    with pytest.raises(ConfigError, match=rf"{name}='/no/such/dir' is not an existing directory"):
        load_config(env={**base, name: "/no/such/dir"})
    with pytest.raises(ConfigError, match=rf"{name}='host/proc' must be an absolute path"):
        load_config(env={**base, name: "host/proc"})
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(ConfigError, match=name):
        load_config(env={**base, name: str(a_file)})


def test_procfs_in_the_file_is_named_as_agent_procfs(tmp_path):
    path = tmp_path / "agent.toml"
    path.write_text('[agent]\nprocfs = "/no/such/proc"\n')
    with pytest.raises(ConfigError, match=r"agent\.procfs='/no/such/proc' is not an existing directory"):
        load_config(path, env={"FLEETWATCH_AGENT_STATE_DIR": str(tmp_path)})


def test_agent_with_a_missing_hostfs_exits_2_naming_the_variable(state_dir):
    env = agent_env(state_dir, FLEETWATCH_AGENT_HOSTFS="/host/root-missing")
    result = subprocess.run(
        [str(AGENT_SCRIPT)], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "FLEETWATCH_AGENT_HOSTFS='/host/root-missing' is not an existing directory" in result.stderr
