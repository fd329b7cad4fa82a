"""SDK fallback file -> agent tailer -> store -> search: attributes stay searchable as attr.KEY."""

from __future__ import annotations

import logging
import os

from agent.sdk import AgentClient, AgentHandler
from tests.logship.conftest import TailSetup


def test_fallback_record_is_found_by_its_attribute(api, store, tmp_path):
    tail = TailSetup(str(tmp_path))
    fallback = tail.path("fallback.log")
    client = AgentClient(socket_path=os.path.join(str(tmp_path), "none.sock"), fallback_path=fallback)
    handler = AgentHandler("shop", client=client)
    for user_id in (42, 7):
        record = logging.LogRecord("orders", logging.ERROR, __file__, 1, "payment failed", (), None)
        record.user_id = user_id
        handler.handle(record)
    client.flush()
    assert client.stats()["fallback_written"] == 2
    tail.tailer([{"paths": [fallback], "format": "json"}]).poll()
    assert store(tail.send.unique_records()) == 2
    body = api.get("/api/v1/logs/search", {"attr.user_id": "42"}).json()
    assert body["count"] == 1
    (row,) = body["data"]
    assert (row["service"], row["logger"], row["message"]) == ("shop", "orders", "payment failed")
    assert row["attributes"]["user_id"] == 42
    assert "attrs" not in row["attributes"]
