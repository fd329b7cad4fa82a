"""Fixtures for the log shipping tests: a tailer on a temporary directory with a recording sender."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from agent.logs import AgentInfo, FileTailer, LogShipConfig, PositionStore
from shared.wire import Batch, decode_batch

AGENT = AgentInfo("agent-test", "host-a", "0.1.0")


class Recorder:
    """A send(bytes) that keeps every batch; ``fail_next`` makes calls raise after recording."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []
        self.fail_after_record = 0

    def __call__(self, data: bytes) -> None:
        self.raw.append(data)
        if self.fail_after_record:
            self.fail_after_record -= 1
            raise ConnectionError("simulated crash after the batch was handed over")

    def batches(self) -> list[Batch]:
        return [decode_batch(data) for data in self.raw]

    def unique_records(self) -> list[dict[str, Any]]:
        """Records of batches with distinct identities, as the workers would store them."""
        seen: set[tuple[str, int, int]] = set()
        out: list[dict[str, Any]] = []
        for batch in self.batches():
            if batch.identity not in seen:
                seen.add(batch.identity)
                out.extend(batch.logs)
        return out

    def messages(self) -> list[str]:
        return [record["message"] for record in self.unique_records()]


class TailSetup:
    """A log directory, a state directory and a way to (re)start the tailer on them."""

    def __init__(self, root: str) -> None:
        self.logs = os.path.join(root, "logs")
        self.state = os.path.join(root, "state")
        os.makedirs(self.logs)
        self.send = Recorder()

    def path(self, name: str) -> str:
        return os.path.join(self.logs, name)

    def tailer(self, files: list[dict[str, Any]], **options: Any) -> FileTailer:
        raw = {"socket_enabled": False, "files": files, "multiline_timeout": 0.2, **options}
        config = LogShipConfig.from_dict(raw, self.state)
        return FileTailer(config, AGENT, self.send, PositionStore(config.state_dir))


def append(path: str, data: str | bytes) -> None:
    with open(path, "ab") as handle:
        handle.write(data.encode() if isinstance(data, str) else data)


@pytest.fixture
def tail(tmp_path) -> Iterator[TailSetup]:
    yield TailSetup(str(tmp_path))
