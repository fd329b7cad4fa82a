"""Network interface counters, per interface and summed over all but loopback."""

from __future__ import annotations

import os
from functools import partial
from typing import NamedTuple

import psutil

from agent.collectors.base import Collector, SeriesList
from agent.collectors.hostpaths import DEFAULT_PATHS, HostPaths
from agent.collectors.options import DEFAULT_OPTIONS, CollectorOptions
from shared.wire import COUNTER, series_dict

LOOPBACK_PREFIXES = ("lo",)
PROC_NET_DEV = "/proc/net/dev"


class InterfaceCounters(NamedTuple):
    bytes_sent: int
    bytes_recv: int
    packets_sent: int
    packets_recv: int
    errin: int
    errout: int
    dropin: int = 0
    dropout: int = 0


def read_proc_net_dev(path: str = PROC_NET_DEV) -> dict[str, InterfaceCounters]:
    """Return the counters of every interface from the kernel's table (64-bit counters)."""
    out: dict[str, InterfaceCounters] = {}
    with open(path, encoding="ascii") as handle:
        for line in handle:
            name, sep, rest = line.partition(":")
            fields = rest.split()
            if not sep or len(fields) < 16:  # the two header lines
                continue
            recv_bytes, recv_packets, errin, dropin, sent_bytes, sent_packets, errout, dropout = (
                int(fields[i]) for i in (0, 1, 2, 3, 8, 9, 10, 11)
            )
            out[name.strip()] = InterfaceCounters(
                sent_bytes, recv_bytes, sent_packets, recv_packets, errin, errout, dropin, dropout
            )
    return out


def read_psutil_net_io() -> dict[str, InterfaceCounters]:
    """Return the same counters through psutil (hosts without /proc/net/dev)."""
    counters = psutil.net_io_counters(pernic=True, nowrap=True) or {}
    return {
        name: InterfaceCounters(
            io.bytes_sent,
            io.bytes_recv,
            io.packets_sent,
            io.packets_recv,
            io.errin,
            io.errout,
            io.dropin,
            io.dropout,
        )
        for name, io in counters.items()
    }


PER_INTERFACE = (
    ("system_network_bytes_sent_total", "bytes_sent"),
    ("system_network_bytes_recv_total", "bytes_recv"),
    ("system_network_packets_sent_total", "packets_sent"),
    ("system_network_packets_recv_total", "packets_recv"),
)
TOTALS = (
    ("system_network_bytes_sent_total", "bytes_sent"),
    ("system_network_bytes_recv_total", "bytes_recv"),
)


class NetworkCollector(Collector):
    name = "network"
    description = (
        "Cumulative traffic per interface since boot; byte totals without the interface label sum every "
        "interface except loopback."
    )
    fields = {
        "system_network_bytes_sent_total": "counter, bytes, label interface (or none = total without lo)",
        "system_network_bytes_recv_total": "counter, bytes, label interface (or none = total without lo)",
        "system_network_packets_sent_total": "counter, packets, label interface",
        "system_network_packets_recv_total": "counter, packets, label interface",
        "system_network_errors_total": "counter, errors, labels interface and direction (in/out)",
        "system_network_drops_total": "counter, packets dropped, labels interface and direction (in/out)",
    }

    def __init__(self, paths: HostPaths = DEFAULT_PATHS, options: CollectorOptions = DEFAULT_OPTIONS) -> None:
        super().__init__(paths, options)
        net_dev = paths.proc("net", "dev")
        self._read = partial(read_proc_net_dev, net_dev) if os.path.exists(net_dev) else read_psutil_net_io

    def collect(self, now: float) -> SeriesList:
        counters = self._read()
        series: SeriesList = []
        totals = dict.fromkeys([name for name, _ in TOTALS], 0.0)
        for interface, io in sorted(counters.items()):
            labels = {"interface": interface}
            for name, attr in PER_INTERFACE:
                series.append(series_dict(name, [[now, float(getattr(io, attr))]], labels, COUNTER))
            for direction, errors, drops in (("in", io.errin, io.dropin), ("out", io.errout, io.dropout)):
                labels_dir = {"interface": interface, "direction": direction}
                series.append(
                    series_dict("system_network_errors_total", [[now, float(errors)]], labels_dir, COUNTER)
                )
                series.append(
                    series_dict("system_network_drops_total", [[now, float(drops)]], labels_dir, COUNTER)
                )
            if not interface.startswith(LOOPBACK_PREFIXES):
                for name, attr in TOTALS:
                    totals[name] += getattr(io, attr)
        series += [series_dict(name, [[now, value]], None, COUNTER) for name, value in totals.items()]
        return series
