"""Agent-side log shipping: the local endpoint for the SDK and file tailing (no Django)."""

from __future__ import annotations

from agent.logs.config import AgentInfo, FileSource, LogShipConfig
from agent.logs.endpoint import LocalEndpoint
from agent.logs.shipper import LogShipper
from agent.logs.state import PositionStore
from agent.logs.tailer import FileTailer

__all__ = [
    "AgentInfo",
    "FileSource",
    "FileTailer",
    "LocalEndpoint",
    "LogShipConfig",
    "LogShipper",
    "PositionStore",
]
