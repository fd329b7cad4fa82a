"""Queue metrics and logs received over HTTP (remote write, OTLP) to the ingest streams.

The web process never writes samples itself: it turns a request into wire-format
batches (one per host) and XADDs them, and the ingest workers store them like an
agent's. A batch's identity is derived from the request body, so a sender retrying
the same request (after a timeout or a 503) is stored once.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from typing import Any

from alerting_worker.ingest import stats
from collector_server.enrollments.models import server_secret
from collector_server.orgs.scope import queued_agent_id
from collector_server.redis_conn import get_stream_redis, producer_key
from shared import streams
from shared.signing import SERVER_KEY_ID, Credential, Signer
from shared.wire import encode_batch

# A batch stays far below the wire format's 16 MiB limit.
SERIES_PER_BATCH = 2_000
LOGS_PER_BATCH = 2_000
EPOCH = 1


def _seq(body_digest: bytes, host: str, part: int) -> int:
    digest = hashlib.sha256(body_digest + host.encode() + part.to_bytes(4, "big")).digest()
    return int.from_bytes(digest[:8], "big") >> 1  # a positive int64


def queue(
    kind: str,
    source: str,
    body: bytes,
    by_host: dict[str, list[dict[str, Any]]],
    counts: Counter[str] | None = None,
    org_id: int | None = None,
) -> int:
    """XADD one batch per host (and per chunk of entries); return the number of batches.

    ``org_id``: the caller's organisation, where new hosts are stored (None: the default one).
    """
    digest = hashlib.sha256(body).digest()
    size = SERIES_PER_BATCH if kind == streams.METRICS else LOGS_PER_BATCH
    client = get_stream_redis()
    signer = Signer(Credential(SERVER_KEY_ID, server_secret()))  # accepted while signing is required
    pipe = client.pipeline(transaction=False)
    batches = 0
    now = time.time()
    for host, entries in sorted(by_host.items()):
        for part, first in enumerate(range(0, len(entries), size)):
            chunk = entries[first : first + size]
            agent_id = queued_agent_id(source, host, org_id)
            payload = encode_batch(
                kind=kind,
                agent_id=agent_id,
                host=host,
                agent_version=source,
                epoch=EPOCH,
                seq=_seq(digest, host, part),
                sent_at=now,
                series=chunk if kind == streams.METRICS else None,
                logs=chunk if kind == streams.LOGS else None,
            )
            key = producer_key(kind, agent_id)  # the shard of the batch's agent id, like an agent's
            pipe.xadd(key, {streams.PAYLOAD_FIELD: payload, **signer.fields(payload)})
            batches += 1
    if counts:
        stats.add(pipe, counts)
    pipe.execute()
    return batches
