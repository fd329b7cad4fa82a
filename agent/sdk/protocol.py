"""Messages an application sends to the agent's local endpoint (one msgpack map per datagram).

{"t": "logs", "r": [{logs-batch record: ts, level, message, ...}, ...]}   (what the SDK sends)
{"t": "log", "r": {logs-batch record}}                                     (one record; also accepted)
{"t": "metrics", "series": [{"name", "type", "labels", "points"}, ...]}
"""

from __future__ import annotations

import os
from typing import Any

import msgpack

LOG = "log"
LOGS = "logs"
METRICS = "metrics"
SOCKET_ENV = "FLEETWATCH_AGENT_SOCKET"
DEFAULT_SOCKET_PATH = "/run/fleetwatch/agent.sock"
# Linux refuses Unix datagrams above the socket buffer size (about 200 KiB by default); keep
# every message well under it so one large record never hits EMSGSIZE.
MAX_MESSAGE_BYTES = 60 * 1024


def default_socket_path() -> str:
    """Return the endpoint path from FLEETWATCH_AGENT_SOCKET, or the default."""
    return os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET_PATH


def pack(message: dict[str, Any]) -> bytes:
    return msgpack.packb(message, use_bin_type=True, default=str)


def unpack(data: bytes, strict_map_key: bool = True) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=strict_map_key)


_LOGS_PREFIX = msgpack.packb({"t": LOGS, "r": None})[:-1]  # a 2-entry map up to the "r" value


def array_header(length: int) -> bytes:
    """The msgpack header of an array of ``length`` items (fixarray, array 16 or array 32)."""
    if length < 16:
        return bytes((0x90 | length,))
    if length < 1 << 16:
        return b"\xdc" + length.to_bytes(2, "big")
    return b"\xdd" + length.to_bytes(4, "big")


def pack_logs(packed_records: list[bytes]) -> bytes:
    """Return one {"t": "logs", "r": [...]} message from records packed one by one with pack().

    The records are joined as they are, so each is packed once, when it is logged.
    """
    return _LOGS_PREFIX + array_header(len(packed_records)) + b"".join(packed_records)
