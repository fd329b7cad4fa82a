"""The collectors added for node_exporter's coverage, each against a /proc (or host root) tree the
test writes, so that real files are parsed, and against this machine's own /proc.

systemd: a fixture root without ``run/systemd/system`` (a container) reports nothing; one with it
gets its units from a real dbus-daemon started by the test on ``<root>/run/dbus/system_bus_socket``,
where a jeepney service of the test answers ``ListUnitsFiltered`` as systemd's manager does.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from agent.collectors import REGISTRY, CollectorSet, build_collectors
from agent.collectors.disk import DiskIOCollector, DiskUsageCollector, filesystem_values
from agent.collectors.filefd import FileFdCollector
from agent.collectors.hostpaths import HostPaths
from agent.collectors.kernel import KernelCollector
from agent.collectors.network import NetworkCollector
from agent.collectors.options import CollectorOptions
from agent.collectors.pressure import PressureCollector
from agent.collectors.systemd import SystemdCollector
from agent.collectors.topprocs import (
    CLOCK_TICKS,
    PAGE_BYTES,
    TopProcessesCollector,
    cpu_percent_by_name,
    read_processes,
)
from shared.wire import COUNTER, GAUGE


def values(series: list[dict], name: str, **labels: str) -> list[float]:
    return [
        s["points"][0][1]
        for s in series
        if s["name"] == name and all(s["labels"].get(k) == v for k, v in labels.items())
    ]


def by_label(series: list[dict], name: str, label: str) -> dict[str, float]:
    return {s["labels"][label]: s["points"][0][1] for s in series if s["name"] == name}


@pytest.fixture
def procfs(tmp_path: Path) -> Path:
    root = tmp_path / "proc"
    (root / "net").mkdir(parents=True)
    (root / "sys" / "fs").mkdir(parents=True)
    return root


# --- kernel: /proc/stat ---------------------------------------------------------------------------


def test_kernel_counters_are_parsed_from_proc_stat(procfs):
    (procfs / "stat").write_text(
        "cpu  10 0 5 100 0 0 0 0 0 0\ncpu0 10 0 5 100 0 0 0 0 0 0\n"
        "intr 987654 12 0 7 0 0\nctxt 123456789\nbtime 1700000000\nprocesses 4242\n"
        "procs_running 3\nprocs_blocked 1\nsoftirq 5555 1 2 3 4 5 6 7 8 9 10\n"
    )
    series = KernelCollector(HostPaths(str(procfs))).collect(time.time())
    got = {s["name"]: (s["points"][0][1], s["type"]) for s in series}
    assert got == {
        "system_context_switches_total": (123456789.0, COUNTER),
        "system_interrupts_total": (987654.0, COUNTER),
        "system_softirqs_total": (5555.0, COUNTER),
        "system_forks_total": (4242.0, COUNTER),
        "system_procs_running": (3.0, GAUGE),
        "system_procs_blocked": (1.0, GAUGE),
        "system_boot_time_seconds": (1700000000.0, GAUGE),
    }


def test_kernel_counters_of_this_host_grow_and_boot_time_is_past():
    collector = KernelCollector()
    first = collector.collect(time.time())
    for _ in range(20):
        time.sleep(0.001)  # each sleep is a context switch of this process at least
    second = collector.collect(time.time())
    assert len(first) == len(KernelCollector.fields)
    assert (
        values(second, "system_context_switches_total")[0] > values(first, "system_context_switches_total")[0]
    )
    assert values(second, "system_forks_total")[0] >= values(first, "system_forks_total")[0] > 0
    assert 0 < values(first, "system_boot_time_seconds")[0] == psutil.boot_time()
    assert values(first, "system_procs_running")[0] >= 1  # this test is running


# --- filefd: /proc/sys/fs/file-nr -----------------------------------------------------------------


def test_filefd_reads_allocated_and_maximum(procfs):
    (procfs / "sys" / "fs" / "file-nr").write_text("2144\t0\t9223372036854775807\n")
    series = FileFdCollector(HostPaths(str(procfs))).collect(time.time())
    assert values(series, "system_filefd_allocated") == [2144.0]
    assert values(series, "system_filefd_maximum") == [float(9223372036854775807)]


def test_filefd_of_this_host_is_positive_and_below_the_limit():
    series = FileFdCollector().collect(time.time())
    allocated, maximum = (
        values(series, "system_filefd_allocated")[0],
        values(series, "system_filefd_maximum")[0],
    )
    assert 0 < allocated <= maximum
    with open("/proc/sys/fs/file-max") as handle:
        assert maximum == float(handle.read())


# --- pressure: /proc/pressure ---------------------------------------------------------------------


def write_pressure(procfs: Path) -> None:
    (procfs / "pressure").mkdir()
    (procfs / "pressure" / "cpu").write_text(
        "some avg10=1.00 avg60=0.50 avg300=0.10 total=2500000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=7\n"
    )
    (procfs / "pressure" / "memory").write_text(
        "some avg10=0.00 avg60=0.00 avg300=0.00 total=1500\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=500\n"
    )
    (procfs / "pressure" / "io").write_text(
        "some avg10=0.00 avg60=0.00 avg300=0.00 total=3000000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1000000\n"
    )


def test_pressure_totals_become_seconds_counters(procfs):
    write_pressure(procfs)
    collector = PressureCollector(HostPaths(str(procfs)))
    series = collector.collect(time.time())
    assert collector.enabled
    assert {s["name"]: s["points"][0][1] for s in series} == {
        "system_pressure_cpu_waiting_seconds_total": 2.5,  # cpu "full" is not sent (node_exporter neither)
        "system_pressure_memory_waiting_seconds_total": 0.0015,
        "system_pressure_memory_stalled_seconds_total": 0.0005,
        "system_pressure_io_waiting_seconds_total": 3.0,
        "system_pressure_io_stalled_seconds_total": 1.0,
    }
    assert {s["type"] for s in series} == {COUNTER}


def test_pressure_without_psi_logs_once_and_reports_nothing(procfs, caplog):
    caplog.set_level(logging.INFO, logger="agent.collectors.pressure")
    collector = PressureCollector(HostPaths(str(procfs)))
    assert not collector.enabled
    assert collector.collect(time.time()) == [] and collector.collect(time.time()) == []
    lines = [r.getMessage() for r in caplog.records if r.name == "agent.collectors.pressure"]
    assert len(lines) == 1 and "pressure collector off" in lines[0]


def test_pressure_of_this_host_matches_its_files():
    collector = PressureCollector()
    if not os.path.exists("/proc/pressure/cpu"):
        assert collector.collect(time.time()) == []
        return
    series = collector.collect(time.time())
    assert {s["name"] for s in series} == set(PressureCollector.fields)
    with open("/proc/pressure/io") as handle:
        total = int(handle.readline().rpartition("total=")[2]) / 1e6
    # the counter only grows between the two reads
    assert values(series, "system_pressure_io_waiting_seconds_total")[0] <= total


# --- diskio and network: the added columns --------------------------------------------------------


def test_disk_io_times_and_queue_come_from_diskstats(procfs):
    (procfs / "diskstats").write_text(
        "   8       0 sda 100 5 2048 1500 40 2 640 2500 3 4000 6000 0 0 0 0 0 0\n"
        "   7       0 loop0 1 0 2 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
    )
    series = DiskIOCollector(HostPaths(str(procfs))).collect(time.time())
    assert {s["labels"]["device"] for s in series} == {"sda"}
    got = {s["name"]: s["points"][0][1] for s in series}
    assert got == {
        "system_disk_read_bytes_total": 2048 * 512.0,
        "system_disk_written_bytes_total": 640 * 512.0,
        "system_disk_reads_total": 100.0,
        "system_disk_writes_total": 40.0,
        "system_disk_read_time_seconds_total": 1.5,
        "system_disk_write_time_seconds_total": 2.5,
        "system_disk_io_now": 3.0,
        "system_disk_io_time_seconds_total": 4.0,
        "system_disk_io_time_weighted_seconds_total": 6.0,
    }


def test_network_drops_per_interface_and_direction(procfs):
    (procfs / "net" / "dev").write_text(
        "Inter-|   Receive                                                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
        "  eth0: 1000 10 1 7 0 0 0 0 2000 20 2 9 0 0 0 0\n"
    )
    series = NetworkCollector(HostPaths(str(procfs))).collect(time.time())
    assert by_label(
        [s for s in series if s["name"] == "system_network_drops_total"],
        "system_network_drops_total",
        "direction",
    ) == {
        "in": 7.0,
        "out": 9.0,
    }
    assert values(series, "system_network_errors_total", direction="out") == [2.0]


# --- filesystems: size, inodes, read-only ---------------------------------------------------------


def test_filesystem_values_follow_statvfs():
    st = os.statvfs_result((4096, 4096, 1000, 300, 200, 5000, 1234, 1200, os.ST_RDONLY, 255))
    got = filesystem_values(st)
    assert got == {
        "system_disk_usage_percent": round(100.0 * 700 / 900, 1),
        "system_disk_used_bytes": 700 * 4096.0,
        "system_disk_free_bytes": 200 * 4096.0,
        "system_disk_total_bytes": 1000 * 4096.0,
        "system_disk_inodes": 5000.0,
        "system_disk_inodes_free": 1234.0,
        "system_disk_readonly": 1.0,
    }
    assert (
        filesystem_values(os.statvfs_result((4096, 4096, 0, 0, 0, 0, 0, 0, 0, 255)))[
            "system_disk_usage_percent"
        ]
        == 0.0
    )


def test_filesystem_series_of_a_host_root_match_its_statvfs(tmp_path):
    procfs = tmp_path / "proc"
    (procfs / "1").mkdir(parents=True)
    shutil.copy("/proc/filesystems", procfs / "filesystems")
    (procfs / "1" / "mounts").write_text("/dev/fakeroot / ext4 rw 0 0\n")
    hostfs = tmp_path / "root"
    hostfs.mkdir()
    series = DiskUsageCollector(HostPaths(str(procfs), str(hostfs))).collect(time.time())
    st = os.statvfs(hostfs)
    assert values(series, "system_disk_total_bytes", mountpoint="/") == [float(st.f_blocks * st.f_frsize)]
    assert values(series, "system_disk_inodes", mountpoint="/") == [float(st.f_files)]
    assert values(series, "system_disk_readonly", mountpoint="/") == [0.0]
    assert values(series, "system_disk_used_bytes", mountpoint="/")[0] == pytest.approx(
        psutil.disk_usage(str(hostfs)).used, rel=0.01
    )


# --- top_processes: /proc/<pid>/stat --------------------------------------------------------------


def write_process(procfs: Path, pid: int, name: str, ticks: int, rss_pages: int, start: int = 1000) -> None:
    """One /proc/<pid>/stat line with utime+stime = ticks (split), start time and RSS in pages."""
    fields = ["S", "1", str(pid), str(pid), "0", "-1", "4194560", "0", "0", "0", "0"]
    fields += [str(ticks - ticks // 3), str(ticks // 3), "0", "0", "20", "0", "1", "0", str(start)]
    fields += ["10000000", str(rss_pages), "18446744073709551615"] + ["0"] * 27
    directory = procfs / str(pid)
    directory.mkdir(exist_ok=True)
    (directory / "stat").write_text(f"{pid} ({name}) {' '.join(fields)}\n")


def test_process_table_parsing_handles_names_with_spaces_and_parentheses(procfs):
    write_process(procfs, 10, "postgres", 500, 100)
    write_process(procfs, 11, "my (odd) name", 30, 7)
    (procfs / "12").mkdir()  # exited during the walk: no stat file
    (procfs / "self").mkdir()
    sample = read_processes(str(procfs))
    assert sample == {
        (10, 1000): ("postgres", 500, 100 * PAGE_BYTES),
        (11, 1000): ("my (odd) name", 30, 7 * PAGE_BYTES),
    }


def test_cpu_share_groups_by_name_and_counts_new_and_reused_pids_from_zero():
    before = {(1, 5): ("postgres", 100, 0), (2, 5): ("postgres", 100, 0), (3, 5): ("nginx", 50, 0)}
    after = {
        (1, 5): ("postgres", 100 + CLOCK_TICKS, 0),  # one CPU-second in the window
        (2, 5): ("postgres", 100 + CLOCK_TICKS // 2, 0),
        (3, 900): ("nginx", CLOCK_TICKS // 4, 0),  # pid 3 reused: a new process, all its ticks count
        (4, 900): ("idle", 0, 0),
    }
    shares = cpu_percent_by_name(before, after, seconds=2.0)
    assert shares == {"postgres": pytest.approx(75.0), "nginx": pytest.approx(12.5)}
    assert cpu_percent_by_name(before, after, seconds=0.0) == {}


def test_top_processes_sends_the_n_largest_names_by_cpu_and_memory_once_per_interval(procfs):
    for pid, (name, rss) in enumerate(
        [("postgres", 500), ("postgres", 500), ("nginx", 300), ("redis", 800), ("sshd", 10), ("cron", 5)],
        start=100,
    ):
        write_process(procfs, pid, name, 100, rss)
    options = CollectorOptions(top_processes=3, top_processes_interval=3600.0)
    collector = TopProcessesCollector(HostPaths(str(procfs)), options)
    write_process(procfs, 100, "postgres", 100 + 300, 500)  # CPU used since the first walk
    write_process(procfs, 102, "nginx", 100 + 200, 300)
    write_process(procfs, 104, "sshd", 100 + 100, 10)
    write_process(procfs, 105, "cron", 100 + 50, 5)
    series = collector.collect(time.time())
    memory = by_label(series, "system_process_memory_bytes", "process")
    assert memory == {
        "postgres": 1000.0 * PAGE_BYTES,
        "redis": 800.0 * PAGE_BYTES,
        "nginx": 300.0 * PAGE_BYTES,
    }
    cpu = [s["labels"]["process"] for s in series if s["name"] == "system_process_cpu_percent"]
    assert cpu == ["postgres", "nginx", "sshd"]  # largest first; cron (4th) and idle redis left out
    assert all(set(s["labels"]) == {"process"} for s in series)
    assert collector.collect(time.time()) == []  # next walk only after top_processes_interval


def test_top_processes_of_this_host_finds_a_busy_child_by_its_name(tmp_path):
    spinner = tmp_path / "fwspinner"
    spinner.symlink_to(shutil.which("sh"))  # comm is the name the program was started by
    child = subprocess.Popen([str(spinner), "-c", "while :; do :; done"])
    try:
        collector = TopProcessesCollector(options=CollectorOptions(top_processes=100))
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:  # the child spins meanwhile
            time.sleep(0.05)
        series = collector.collect(time.time())
    finally:
        child.kill()
        child.wait()
    cpu = by_label(series, "system_process_cpu_percent", "process")
    memory = by_label(series, "system_process_memory_bytes", "process")
    assert cpu.get("fwspinner", 0.0) > 1.0
    own_name = psutil.Process().name()
    assert memory[own_name] >= psutil.Process().memory_info().rss * 0.9


# --- systemd ---------------------------------------------------------------------------------------

UNITS = [
    ("nginx.service", "active", "running"),
    ("ssh.service", "active", "running"),
    ("backup.service", "failed", "failed"),
    ("disk-check.service", "failed", "failed"),
    ("cups.service", "inactive", "dead"),
    ("apt-daily.timer", "activating", "waiting"),
]
BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>fleetwatch-test</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""


class FakeSystemd:
    """A jeepney service named org.freedesktop.systemd1 answering ListUnitsFiltered from ``UNITS``.

    As systemd does, a unit matches when its load, active or sub state is one of those asked for.
    """

    def __init__(self, address: str) -> None:
        from jeepney.bus_messages import message_bus
        from jeepney.io.blocking import open_dbus_connection

        self.connection = open_dbus_connection(bus=address)
        self.connection.send_and_get_reply(message_bus.RequestName("org.freedesktop.systemd1"), timeout=5)
        self.asked: list[list[str]] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        from jeepney import HeaderFields, MessageType, new_method_return

        rows = [
            (name, "", "loaded", active, sub, "", "/org/freedesktop/systemd1/unit/x", 0, "", "/")
            for name, active, sub in UNITS
        ]
        while not self.stopping.is_set():
            try:
                message = self.connection.receive(timeout=0.1)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = message.header.fields
            if (
                message.header.message_type == MessageType.method_call
                and fields.get(HeaderFields.member) == "ListUnitsFiltered"
            ):
                states = list(message.body[0])
                self.asked.append(states)
                matching = [row for row in rows if {row[2], row[3], row[4]} & set(states)]
                self.connection.send(new_method_return(message, "a(ssssssouso)", (matching,)))

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.connection.close()


@pytest.fixture
def systemd_root() -> Iterator[tuple[Path, FakeSystemd]]:
    """A host root booted with systemd: run/systemd/system, and a system bus with a fake systemd on it."""
    if shutil.which("dbus-daemon") is None:
        pytest.fail("dbus-daemon is not installed (Debian package dbus-daemon); the systemd test needs it")
    root = Path(tempfile.mkdtemp(prefix="fwsd", dir="/tmp"))  # a Unix socket path must stay short
    (root / "run" / "systemd" / "system").mkdir(parents=True)
    (root / "run" / "dbus").mkdir()
    socket_path = root / "run" / "dbus" / "system_bus_socket"
    (root / "bus.conf").write_text(BUS_CONFIG.format(socket=socket_path))
    daemon = subprocess.Popen(
        ["dbus-daemon", f"--config-file={root / 'bus.conf'}", "--nofork", "--print-address"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert daemon.stdout is not None
        address = daemon.stdout.readline().decode().strip()
        assert address.startswith("unix:path="), daemon.stderr.read().decode() if daemon.stderr else address
        service = FakeSystemd(address)
        try:
            yield root, service
        finally:
            service.stop()
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


def test_systemd_unsettled_units_per_state_and_failed_units_come_from_systemd(systemd_root):
    root, service = systemd_root
    paths = HostPaths("/proc", str(root))
    collector = SystemdCollector(paths, CollectorOptions(systemd_interval=3600.0))
    assert collector.enabled
    series = collector.collect(time.time())
    assert by_label(series, "system_systemd_units", "state") == {
        "failed": 2.0,
        "activating": 1.0,
        "deactivating": 0.0,
        "reloading": 0.0,
    }
    # only the unsettled units are asked for: the active and inactive ones are not decoded
    assert service.asked == [["failed", "activating", "deactivating", "reloading"]]
    assert by_label(series, "system_systemd_unit_failed", "unit") == {
        "backup.service": 1.0,
        "disk-check.service": 1.0,
    }
    assert collector.collect(time.time()) == []  # once per systemd_interval


def test_systemd_marker_without_a_bus_is_an_error_counted_by_the_collector_set(tmp_path):
    (tmp_path / "run" / "systemd" / "system").mkdir(parents=True)
    collectors = CollectorSet([SystemdCollector(HostPaths("/proc", str(tmp_path)))])
    assert collectors.collect(time.time()) == []
    assert collectors.errors_total == {"systemd": 1}


def test_without_systemd_the_collector_is_off_with_one_line_and_sends_nothing(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="agent.collectors.systemd")
    (tmp_path / "run" / "systemd").mkdir(parents=True)  # /run/systemd exists in containers too
    collector = SystemdCollector(HostPaths("/proc", str(tmp_path)))
    assert not collector.enabled
    assert collector.collect(time.time()) == [] and collector.collect(time.time()) == []
    lines = [r.getMessage() for r in caplog.records if r.name == "agent.collectors.systemd"]
    assert len(lines) == 1 and "systemd collector off" in lines[0]


def test_this_host_is_not_booted_with_systemd_and_gets_no_systemd_series():
    collector = SystemdCollector()
    assert collector.enabled == os.path.isdir("/run/systemd/system")
    if not collector.enabled:
        assert collector.collect(time.time()) == []


# --- the agent process: jeepney and the process walk stay out of a plain cycle -------------------


def test_jeepney_is_imported_only_by_a_collector_that_needs_it():
    code = (
        "import sys; from agent.collectors import build_collectors, REGISTRY; "
        "c = build_collectors(list(REGISTRY)); c.collect(0.0); print('jeepney' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == str(os.path.isdir("/run/systemd/system"))


def test_every_new_collector_is_registered_and_documents_its_metrics():
    for name in ("kernel", "filefd", "pressure", "top_processes", "systemd"):
        assert name in REGISTRY
        assert REGISTRY[name].fields and REGISTRY[name].description
    assert [c.name for c in build_collectors(["kernel", "filefd"]).collectors] == ["kernel", "filefd"]
