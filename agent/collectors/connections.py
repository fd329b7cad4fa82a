"""TCP connections by state, and the number of established connections.

Counting sockets per state means walking the kernel's whole TCP hash table once per
address family, which costs several milliseconds even on an idle host (the table has
hundreds of thousands of buckets on a machine with a lot of memory; measured in
bench/agent_cost.py). So:

- ``system_connections_active`` comes every cycle from ``/proc/net/snmp`` (``CurrEstab``,
  a counter the kernel keeps, read in microseconds);
- ``system_tcp_connections{state}`` is sampled every ``STATES_EVERY_SECONDS`` (60 s) through
  netlink sock_diag (what ``ss`` uses; one walk for both families), falling back to ``/proc/net/tcp{,6}`` and then to
  ``psutil.net_connections`` (non-Linux). Those series have one point per minute.

``psutil.net_connections`` is avoided on Linux because it also maps every socket to its
process by reading /proc/*/fd, which is slower still.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from collections import Counter
from functools import partial

import psutil

from agent.collectors.base import Collector, SeriesList
from agent.collectors.hostpaths import DEFAULT_PATHS, HostPaths
from agent.collectors.options import DEFAULT_OPTIONS, CollectorOptions
from shared.wire import series_dict

PROC_TCP_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")
# Kernel state codes (include/net/tcp_states.h) -> label values.
TCP_STATES = {
    "01": "established",
    "02": "syn_sent",
    "03": "syn_recv",
    "04": "fin_wait1",
    "05": "fin_wait2",
    "06": "time_wait",
    "07": "close",
    "08": "close_wait",
    "09": "last_ack",
    "0A": "listen",
    "0B": "closing",
    "0C": "new_syn_recv",
}
STATE_COLUMN = 3
STATE_NAMES_BY_NUMBER = {int(code, 16): name for code, name in TCP_STATES.items()}
STATES_EVERY_SECONDS = 60.0
PROC_SNMP = "/proc/net/snmp"

# netlink sock_diag (linux/sock_diag.h, linux/inet_diag.h)
NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST_DUMP = 0x1 | 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLMSG_HEADER = struct.Struct("=IHHII")
INET_DIAG_REQ = struct.Struct("=BBBBI48x")  # family, protocol, ext, pad, states, inet_diag_sockid
TCPDIAG_GETSOCK = 18
LEGACY_DIAG_REQ = struct.Struct("=BBBB48xII")  # family, src_len, dst_len, ext, sockid, states, dbs
ALL_STATES = 0xFFFFFFFF
STATE_OFFSET = NLMSG_HEADER.size + 1  # inet_diag_msg: family u8, state u8, ...


def count_netlink_tcp_states() -> Counter[str]:
    """Count TCP sockets per state with one sock_diag dump covering IPv4 and IPv6.

    The older TCPDIAG_GETSOCK request asks the kernel for every address family in a single
    walk of the hash table (half the cost of one SOCK_DIAG_BY_FAMILY dump per family, which
    remains the fallback).
    """
    counts: Counter[str] = Counter()
    try:
        _dump(TCPDIAG_GETSOCK, LEGACY_DIAG_REQ.pack(socket.AF_INET, 0, 0, 0, ALL_STATES, 0), counts)
        return counts
    except OSError:
        counts.clear()
    for family in (socket.AF_INET, socket.AF_INET6):
        _dump(SOCK_DIAG_BY_FAMILY, INET_DIAG_REQ.pack(family, socket.IPPROTO_TCP, 0, 0, ALL_STATES), counts)
    return counts


def _dump(kind: int, request: bytes, counts: Counter[str]) -> None:
    header = NLMSG_HEADER.pack(NLMSG_HEADER.size + len(request), kind, NLM_F_REQUEST_DUMP, 1, 0)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as sock:
        sock.send(header + request)
        _read_dump(sock, counts)


def _read_dump(sock: socket.socket, counts: Counter[str]) -> None:
    while True:
        data = sock.recv(65536)
        offset = 0
        while offset < len(data):
            length, kind, _, _, _ = NLMSG_HEADER.unpack_from(data, offset)
            if kind == NLMSG_DONE:
                return
            if kind == NLMSG_ERROR:
                errno = -struct.unpack_from("=i", data, offset + NLMSG_HEADER.size)[0]
                raise OSError(errno, f"sock_diag dump failed: {os.strerror(errno)}")
            counts[STATE_NAMES_BY_NUMBER.get(data[offset + STATE_OFFSET], "unknown")] += 1
            offset += (length + 3) & ~3
        if not data:
            return


def read_curr_estab(path: str = PROC_SNMP) -> int:
    """Return the kernel's count of TCP connections in ESTABLISHED or CLOSE_WAIT (RFC 1213)."""
    with open(path, encoding="ascii") as handle:
        tcp = [line.split() for line in handle if line.startswith("Tcp:")]
    return int(tcp[1][tcp[0].index("CurrEstab")])


def count_proc_tcp_states(paths: tuple[str, ...] = PROC_TCP_TABLES) -> Counter[str]:
    """Count sockets per state in the kernel's TCP tables."""
    counts: Counter[str] = Counter()
    for path in paths:
        try:
            with open(path, encoding="ascii") as handle:
                next(handle, None)  # header line
                for line in handle:
                    fields = line.split(None, STATE_COLUMN + 1)
                    if len(fields) > STATE_COLUMN:
                        counts[TCP_STATES.get(fields[STATE_COLUMN], "unknown")] += 1
        except FileNotFoundError:  # no IPv6 on this host
            continue
    return counts


def count_psutil_tcp_states() -> Counter[str]:
    """Count TCP sockets per state through psutil (non-Linux hosts)."""
    return Counter(conn.status.lower() for conn in psutil.net_connections(kind="tcp"))


class ConnectionsCollector(Collector):
    name = "connections"
    description = (
        "TCP sockets of this network namespace: established connections every cycle (kernel counter), "
        "the count per state (zeros included) once a minute."
    )
    fields = {
        "system_tcp_connections": "gauge, sockets, label state (established, listen, time_wait, ...), 1/min",
        "system_connections_active": "gauge, TCP connections established (or close_wait) per /proc/net/snmp",
    }

    def __init__(self, paths: HostPaths = DEFAULT_PATHS, options: CollectorOptions = DEFAULT_OPTIONS) -> None:
        super().__init__(paths, options)
        self._snmp = paths.proc("net", "snmp")
        self._linux = os.path.exists(self._snmp)
        self._states_at = float("-inf")
        self._count_states = count_netlink_tcp_states if self._linux else count_psutil_tcp_states

    def collect(self, now: float) -> SeriesList:
        series: SeriesList = []
        counts: Counter[str] | None = None
        if time.monotonic() - self._states_at >= STATES_EVERY_SECONDS:
            self._states_at = time.monotonic()
            counts = self._states()
            states = dict.fromkeys(TCP_STATES.values(), 0) | dict(counts)
            series += [
                series_dict("system_tcp_connections", [[now, float(value)]], {"state": state})
                for state, value in sorted(states.items())
            ]
        if self._linux:
            active = read_curr_estab(self._snmp)
        else:
            active = (counts if counts is not None else count_psutil_tcp_states())["established"]
        series.append(series_dict("system_connections_active", [[now, float(active)]]))
        return series

    def _states(self) -> Counter[str]:
        try:
            return self._count_states()
        except OSError:  # no netlink sock_diag (old kernel, seccomp): the /proc tables say the same
            tables = (self.paths.proc("net", "tcp"), self.paths.proc("net", "tcp6"))
            self._count_states = partial(count_proc_tcp_states, tables)
            return self._count_states()


class ProcessesCollector(Collector):
    name = "processes"
    description = "Number of processes visible to the agent."
    fields = {"system_processes": "gauge, processes"}

    def __init__(self, paths: HostPaths = DEFAULT_PATHS, options: CollectorOptions = DEFAULT_OPTIONS) -> None:
        super().__init__(paths, options)
        linux = os.path.isdir(paths.proc("1"))  # pid 1 is always there in a Linux procfs
        self._count = partial(count_proc_pids, paths.procfs) if linux else _psutil_pids

    def collect(self, now: float) -> SeriesList:
        return [series_dict("system_processes", [[now, float(self._count())]])]


def count_proc_pids(procfs: str = "/proc") -> int:
    """Count the numeric entries of /proc (psutil.pids also converts and sorts them)."""
    return sum(1 for name in os.listdir(procfs) if name.isdigit())


def _psutil_pids() -> int:
    return len(psutil.pids())
