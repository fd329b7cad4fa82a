"""Fixtures for the end-to-end tests: the real processes of the stack."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from django.db import connection

from collector_server import local_agent
from collector_server.localstack import Stack


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def stack(tmp_path: Path, redis_client, redis_url, partitions):
    db = connection.settings_dict
    env = dict(
        os.environ,
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        REDIS_URL=redis_url,
        DEBUG="true",
        LOG_FORMAT="text",
        FLEETWATCH_AGENT_STATE_DIR=str(tmp_path / "agent"),
        # Its own app socket: never the machine-wide default another agent may hold.
        FLEETWATCH_AGENT_SOCKET=str(tmp_path / "agent.sock"),
        INGEST_JOB_SECONDS="5",
        FLEETWATCH_REQUIRE_SIGNED_BATCHES="true",  # as `make up` runs it: the agent is enrolled
    )
    local_agent.enroll(env)  # never local_agent.create_redis_user here: this Redis is shared
    running = Stack(var=tmp_path, env=env, port=free_port(), agent_interval=1.0)
    running.start()
    yield running
    running.stop()
