"""Where the agent's local endpoint binds when the operator did not say.

The default is ``/run/fleetwatch/agent.sock`` (what the SDK looks for). An agent that may not
create ``/run/fleetwatch`` (not root, read-only ``/run``) binds ``<state_dir>/agent.sock``
instead and says so once, with the variable apps need to find it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agent.sdk.protocol import DEFAULT_SOCKET_PATH, SOCKET_ENV

log = logging.getLogger(__name__)
FALLBACK_NAME = "agent.sock"


def socket_path_is_explicit(logs_table: Mapping[str, Any], env: Mapping[str, str]) -> bool:
    """Return True when the operator chose the path (``[logs] socket_path`` or the variable)."""
    return "socket_path" in logs_table or bool(env.get(SOCKET_ENV))


def usable_socket_path(
    path: str, explicit: bool, state_dir: str | os.PathLike[str], default: str = DEFAULT_SOCKET_PATH
) -> str:
    """Return ``path``, or ``<state_dir>/agent.sock`` when ``path`` is the default and its directory
    cannot be created or written."""
    if explicit or path != default:
        return path
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, exist_ok=True)
        if os.access(directory, os.W_OK | os.X_OK):
            return path
        reason = "not writable"
    except OSError as exc:
        reason = exc.strerror or str(exc)
    fallback = str(Path(state_dir) / FALLBACK_NAME)
    log.warning(
        "cannot use %s (%s: %s); the local endpoint listens on %s instead: "
        "set %s=%s for applications on this host",
        path,
        directory,
        reason,
        fallback,
        SOCKET_ENV,
        fallback,
    )
    return fallback
