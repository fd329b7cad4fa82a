"""The fleetwatch host agent: collects host metrics and pushes batches to Redis streams.

Nothing in this package may import Django (see docs/agent.md).
"""

from __future__ import annotations

__version__ = "0.1.0"
