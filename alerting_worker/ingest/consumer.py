"""Drain one Redis stream through the consumer group into Postgres.

For each chunk: decode (undecodable entries go to the dead-letter stream with the
reason), open one transaction, claim the batch identities (duplicates are skipped),
call the handler, commit, and only then XACK. A crash anywhere before the XACK
leaves the entries pending; a live worker reclaims them with XAUTOCLAIM and the
identity claim makes the second delivery a no-op.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg
from django.db import DataError as DjangoDataError
from django.db import IntegrityError as DjangoIntegrityError
from django.db import connection, transaction
from redis import Redis
from redis.exceptions import ResponseError

from alerting_worker.ingest import identities, signatures, stats
from shared import streams
from shared.signing import COUNTER_PREFIX
from shared.wire import Batch, WireError, decode_batch

log = logging.getLogger(__name__)

Entry = tuple[bytes, dict[bytes, bytes]]
# Errors caused by a batch's content: that batch is dead-lettered, the others are stored.
DATA_ERRORS = (
    psycopg.DataError,
    psycopg.IntegrityError,
    DjangoDataError,
    DjangoIntegrityError,
    WireError,
    ValueError,
    TypeError,
    KeyError,
)


class Handler(Protocol):
    def __call__(self, cursor: psycopg.Cursor, batches: list[Batch]) -> Any: ...


@dataclass
class DrainResult:
    entries: int = 0
    batches: int = 0
    rows: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    reclaimed: int = 0
    counts: Counter[str] = field(default_factory=Counter)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a chunk is decoded and written.

    A chunk allocates hundreds of thousands of small containers that stay alive until it
    is stored; the collector would rescan them again and again (it doubled the decode
    time). Decoded batches hold no reference cycles, so nothing is lost by waiting.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def default_consumer_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def ensure_group(client: Redis, key: str) -> None:
    """Create the consumer group (and the stream) if missing."""
    try:
        client.xgroup_create(key, streams.CONSUMER_GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


class StreamConsumer:
    """Read a stream of `kind` batches in chunks and store them with `handler`."""

    def __init__(
        self,
        client: Redis,
        kind: str,
        handler: Handler,
        consumer: str | None = None,
        chunk: int = 500,
        block_ms: int = 1000,
        claim_idle_ms: int = 60_000,
        verifier: signatures.Verifier | None = None,
    ) -> None:
        self.client = client
        self.kind = kind
        self.handler = handler
        self.key = streams.stream_key(kind)
        self.dead_key = streams.stream_key(streams.DEAD_LETTER)
        self.consumer = consumer or default_consumer_name()
        self.chunk = chunk
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.verifier = verifier or signatures.Verifier(client)

    def drain(self, max_seconds: float = 20.0, stop_when_empty: bool = True) -> DrainResult:
        """Process entries until the stream is empty or `max_seconds` have passed."""
        ensure_group(self.client, self.key)
        result = DrainResult()
        self.reclaim(result)
        deadline = time.monotonic() + max_seconds
        while time.monotonic() < deadline:
            response = self.client.xreadgroup(
                streams.CONSUMER_GROUP,
                self.consumer,
                {self.key: ">"},
                count=self.chunk,
                # A job that stops when the stream is empty must not sit blocked: the
                # scheduler enqueues another in a second, and the worker's other queues wait.
                block=None if stop_when_empty else (self.block_ms or None),
            )
            entries = response[0][1] if response else []
            if not entries:
                if stop_when_empty:
                    break
                continue
            self.process(entries, result)
        return result

    def reclaim(self, result: DrainResult) -> None:
        """Take over entries a dead consumer left pending, and process them."""
        start = "0-0"
        while True:
            reply = self.client.xautoclaim(
                self.key,
                streams.CONSUMER_GROUP,
                self.consumer,
                min_idle_time=self.claim_idle_ms,
                start_id=start,
                count=self.chunk,
            )
            start, entries = reply[0], reply[1]  # Redis 7 adds a third element (deleted ids)
            entries = [e for e in entries if e[1] is not None]
            if entries:
                result.reclaimed += len(entries)
                log.warning("reclaimed %d pending entries of %s", len(entries), self.key)
                self.process(entries, result)
            if start in (b"0-0", "0-0"):
                return

    def process(self, entries: list[Entry], result: DrainResult) -> None:
        """Store one chunk of entries, dead-letter the bad ones, then XACK them all."""
        with paused_gc():
            self._process(entries, result)

    def _process(self, entries: list[Entry], result: DrainResult) -> None:
        good: list[tuple[bytes, Batch]] = []
        dead: list[tuple[bytes, bytes, str]] = []
        counts: Counter[str] = Counter()
        self.verifier.begin_chunk()
        for entry_id, fields in entries:
            payload = (fields or {}).get(streams.PAYLOAD_FIELD, b"")
            try:  # before decoding: the signature covers the exact bytes
                signer = self.verifier.check(fields or {}, payload)
            except signatures.Refused as exc:
                dead.append((entry_id, payload, str(exc)))
                counts[COUNTER_PREFIX + exc.code] += 1
                continue
            try:
                batch = decode_batch(payload)
            except WireError as exc:
                dead.append((entry_id, payload, str(exc)))
                continue
            if batch.kind != self.kind:
                dead.append((entry_id, payload, f"{batch.kind} batch on the {self.kind} stream"))
                continue
            if signer is not None:
                signer.apply(batch)  # the enrollment's host, never the batch's claim
            good.append((entry_id, batch))
        if good:
            dead.extend(self.store([b for _, b in good], counts, result, {id(b): i for i, b in good}))
        self.acknowledge([e[0] for e in entries], dead, counts)
        result.entries += len(entries)
        result.dead_lettered += len(dead)
        result.counts.update(counts)

    def store(
        self, batches: list[Batch], counts: Counter[str], result: DrainResult, entry_of: dict[int, bytes]
    ) -> list[tuple[bytes, bytes, str]]:
        """Write batches in one transaction; on a data error, retry one by one and dead-letter the culprits.

        Only errors that belong to the data (a value Postgres refuses, a constraint, a handler
        rejecting a record) dead-letter a batch. Anything else (database unreachable or
        read-only, missing table or privilege, Redis down) is raised: the entries stay
        pending and are retried, so an outage never empties the stream into the dead letters.
        """
        try:
            prepare: Callable[[list[Batch]], None] | None = getattr(self.handler, "prepare", None)
            if prepare:
                prepare(batches)
            self._write(batches, counts, result)
            return []
        except DATA_ERRORS as exc:
            if len(batches) == 1:
                log.exception("batch %s failed to store", batches[0].identity)
                return [(entry_of[id(batches[0])], b"", f"store failed: {exc.__class__.__name__}: {exc}")]
        dead = []
        for batch in batches:
            dead.extend(self.store([batch], counts, result, entry_of))
        return dead

    def _write(self, batches: list[Batch], counts: Counter[str], result: DrainResult) -> None:
        connection.ensure_connection()
        with transaction.atomic(), connection.cursor() as wrapper:
            cursor = wrapper.cursor
            fresh = identities.claim_new(cursor, batches)
            outcome = self.handler(cursor, fresh) if fresh else 0
        rows, extra = (outcome, {}) if isinstance(outcome, int) else outcome
        duplicates = len(batches) - len(fresh)
        counts.update(extra)
        counts["batches_ingested"] += len(fresh)
        counts["batches_duplicate"] += duplicates
        result.batches += len(fresh)
        result.duplicates += duplicates
        result.rows += rows

    def acknowledge(
        self, ids: list[bytes], dead: list[tuple[bytes, bytes, str]], counts: Counter[str]
    ) -> None:
        """Dead-letter, count and XACK in one Redis transaction."""
        pipe = self.client.pipeline(transaction=True)
        payload_of = {}
        for entry_id, payload, reason in dead:
            payload_of[entry_id] = (payload, reason)
        for entry_id, (payload, reason) in payload_of.items():  # the trim job bounds this stream
            if not payload:
                payload = self._payload(entry_id)
            pipe.xadd(
                self.dead_key,
                {b"b": payload, b"reason": reason.encode(), b"stream": self.key.encode(), b"entry": entry_id},
            )
            log.error("dead-lettered entry %s of %s: %s", entry_id, self.key, reason)
        counts["batches_deadlettered"] += len(payload_of)
        stats.add(pipe, counts)
        if ids:
            pipe.xack(self.key, streams.CONSUMER_GROUP, *ids)
        pipe.execute()

    def _payload(self, entry_id: bytes) -> bytes:
        found = self.client.xrange(self.key, entry_id, entry_id, count=1)
        return found[0][1].get(streams.PAYLOAD_FIELD, b"") if found else b""
