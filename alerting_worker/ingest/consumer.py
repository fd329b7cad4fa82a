"""Drain one Redis stream through the consumer group into Postgres.

A drain first checks that Postgres takes writes (an outage raises before anything is
read, so no delivery is counted), then retries this consumer's own pending entries (those
read before an outage or a crash: recovered within a second of the dependency's return),
reclaims entries a dead consumer left pending for INGEST_CLAIM_IDLE_MS, and then reads new
entries.

For each chunk: decode (undecodable entries go to the dead-letter stream with the reason),
open one transaction, call the handler and claim the batch identities (identities.py: new
entries are stored, then claimed; redelivered ones claimed first, duplicates skipped), commit,
and only then XACK. A crash anywhere before the XACK leaves the entries pending; the identity
claim makes the second delivery a no-op. A chunk is up to `chunk` entries, fewer when the last
chunk's batches of that stream shard (in this process: learned across jobs) say that many would
hold more than `chunk_samples` samples or log records; new, retried and reclaimed entries alike.
A chunk whose batches still hold more than that (the first of a process) is stored in several
transactions of about `chunk_samples` each, acknowledged together.

Failures (alerting_worker.ingest.failures): an outage raises and leaves the chunk pending.
Any other failure is isolated by splitting the chunk in halves until the batch that causes
it stands alone; that batch is dead-lettered and the others are stored. An entry delivered
more than INGEST_MAX_DELIVERIES times (XPENDING's count) is dead-lettered with its last error.
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
from django.db import DatabaseError, connection, transaction
from redis import Redis
from redis.cluster import RedisCluster
from redis.exceptions import ResponseError

from alerting_worker.ingest import failures, identities, limits, signatures, stats
from alerting_worker.ingest.failures import DependencyUnavailable, Failure
from shared import host_limits, streams
from shared.signing import COUNTER_PREFIX
from shared.wire import Batch, WireError, decode_batch

log = logging.getLogger(__name__)

Entry = tuple[bytes, dict[bytes, bytes] | None]
DeadLetter = tuple[bytes, bytes, str]  # entry id, payload (b"": read it back), reason
MAX_REASON_CHARS = 1000
# Entries delivered this often are stored one per transaction: if one of them kills its worker
# (out of memory, a hang ended by the job timeout), it takes only itself down the next time.
SOLO_AFTER_DELIVERIES = 3
DEFAULT_MAX_DELIVERIES = 10
DELIVERIES_STAT = "batches_deadlettered_deliveries"
# After a chunk of new entries held a batch stored before (an agent sending it again), this many
# chunks claim their identities before storing, so a run of resent batches is not stored twice
# and rolled back each time.
CLAIM_FIRST_AFTER_DUPLICATE = 20
# Samples (or log records) per entry of the last chunk of each stream key (kind and shard), kept
# for the process: every ingest job builds a new StreamConsumer, and its first chunk must not read
# `chunk` entries of big batches (after an outage, a spool replay) only because it is new.
SAMPLES_PER_ENTRY: dict[str, float] = {}


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
    retried: int = 0
    counts: Counter[str] = field(default_factory=Counter)


@dataclass
class Chunk:
    """What became of the entries of one chunk, acknowledged together at the end."""

    entries: list[Entry]
    dead: list[DeadLetter] = field(default_factory=list)
    held: dict[bytes, str] = field(default_factory=dict)  # left pending: entry id -> error
    counts: Counter[str] = field(default_factory=Counter)
    refusals: host_limits.Refusals = field(default_factory=dict)
    redelivered: bool = False

    def refuse(self, batch: Batch, reason: str) -> None:
        key = (limits.host_agent_id(batch.agent_id), batch.host)
        self.refusals.setdefault(key, Counter())[reason] += 1


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


def errors_key(stream: str = "") -> str:
    """Redis hash: entry id -> the last error of an entry left pending by a failure it caused.

    One per stream shard, with the shard's hash tag (same Redis Cluster slot as the shard).
    """
    tag = (
        streams.dead_letter_key_for(stream)[len(streams.stream_key(streams.DEAD_LETTER)) :] if stream else ""
    )
    return f"{streams.prefix()}:ingest:lasterror{tag}"


def is_cluster(client: object) -> bool:
    return isinstance(client, RedisCluster)


def live_default_node(client: RedisCluster) -> None:
    """Make a master that answers the cluster client's default node.

    redis-py asks the default node (at first the node of STREAM_REDIS_URL) which keys an
    XREADGROUP names (COMMAND GETKEYS); with that node down every shard's read would fail.
    """
    for node in client.get_primaries():
        try:
            client.get_redis_connection(node).ping()
        except Exception:
            continue
        if node is not client.get_default_node():
            client.set_default_node(node)
        return


class StreamConsumer:
    """Read a stream of `kind` batches in chunks and store them with `handler`."""

    def __init__(
        self,
        client: Redis,
        kind: str,
        handler: Handler,
        consumer: str | None = None,
        chunk: int = 2000,
        chunk_samples: int = 100_000,
        block_ms: int = 1000,
        claim_idle_ms: int = 60_000,
        max_deliveries: int = DEFAULT_MAX_DELIVERIES,
        max_batch_bytes: int = 0,
        verifier: signatures.Verifier | None = None,
        key: str | None = None,
    ) -> None:
        self.client = client
        self.kind = kind
        self.handler = handler
        self.key = key or streams.stream_key(kind)  # one shard of the kind (streams.shard_keys)
        self.dead_key = streams.dead_letter_key_for(self.key)
        self.errors_key = errors_key(self.key)
        self.consumer = consumer or default_consumer_name()
        self.chunk = chunk  # entries per chunk at most
        self.chunk_samples = chunk_samples
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.max_deliveries = max_deliveries
        self.max_batch_bytes = max_batch_bytes  # per-host limit; 0: only the wire format's own
        self.verifier = verifier or signatures.Verifier(client)
        self.claim_first_chunks = 0  # chunks left to claim before storing (_write)

    def drain(self, max_seconds: float = 20.0, stop_when_empty: bool = True) -> DrainResult:
        """Process entries until the stream is empty or `max_seconds` have passed."""
        result = DrainResult()
        self.recover(result)
        deadline = time.monotonic() + max_seconds
        while time.monotonic() < deadline:
            # A job that stops when the stream is empty must not sit blocked: the
            # scheduler enqueues another in a second, and the worker's other queues wait.
            block_ms = None if stop_when_empty else (self.block_ms or None)
            if not self.read_chunk(result, block_ms=block_ms) and stop_when_empty:
                break
        return result

    def recover(self, result: DrainResult) -> None:
        """Before reading new entries: the group exists, Postgres takes writes, pending entries are done."""
        ensure_group(self.client, self.key)
        self.require_database()
        self.retry_own(result)
        self.reclaim(result)

    def read_chunk(self, result: DrainResult, block_ms: int | None = None) -> int:
        """Read and store up to one chunk of new entries; return how many were read."""
        response = self.client.xreadgroup(
            streams.CONSUMER_GROUP, self.consumer, {self.key: ">"}, count=self.read_count(), block=block_ms
        )
        entries = response[0][1] if response else []
        if entries:
            self.process(entries, result)
        return len(entries)

    def read_count(self) -> int:
        """Entries to read for the next chunk: `chunk`, or fewer if that many would exceed `chunk_samples`
        (samples or log records, at the count per entry of the last chunk this process stored from
        this stream key, by any StreamConsumer: SAMPLES_PER_ENTRY).

        Big chunks cost Postgres less per sample (one COPY, one identity INSERT and one commit per
        chunk; the COPY's rows sorted together); bounding them by samples keeps a chunk of big
        batches (500-series agents, a spool replay) within memory and job time.
        """
        per_entry = SAMPLES_PER_ENTRY.get(self.key)
        if not per_entry:
            return self.chunk
        return max(1, min(self.chunk, int(self.chunk_samples / per_entry)))

    def _learn_size(self, entries: int, samples: int) -> None:
        if entries and samples:
            SAMPLES_PER_ENTRY[self.key] = samples / entries

    def _by_samples(self, good: list[tuple[bytes, Batch]]) -> Iterator[list[tuple[bytes, Batch]]]:
        """Split a chunk's batches into runs of about `chunk_samples` samples (one transaction each)."""
        run: list[tuple[bytes, Batch]] = []
        samples = 0
        for item in good:
            size = batch_size(item[1])
            if run and samples + size > self.chunk_samples:
                yield run
                run, samples = [], 0
            run.append(item)
            samples += size
        if run:
            yield run

    def require_database(self) -> None:
        """Raise DependencyUnavailable, before anything is read, if Postgres cannot take writes."""
        problem = failures.database_problem()
        if problem is not None:
            raise DependencyUnavailable(f"ingest of {self.key} waits: {problem}")

    def retry_own(self, result: DrainResult) -> None:
        """Process the entries this consumer read before and did not acknowledge (oldest first).

        They were read before an outage (or a crash of this worker's job); retrying them at
        once, instead of after INGEST_CLAIM_IDLE_MS, is what makes recovery take seconds.
        """
        start = "0"
        while True:
            response = self.client.xreadgroup(
                streams.CONSUMER_GROUP, self.consumer, {self.key: start}, count=self.read_count()
            )
            entries = response[0][1] if response else []
            if not entries:
                return
            start = entries[-1][0]  # entries held back stay pending: never read them twice in one drain
            result.retried += len(entries)
            log.info("retrying %d entries of %s read before and not acknowledged", len(entries), self.key)
            self.process(entries, result, redelivered=True)

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
                count=self.read_count(),
            )
            start, entries = reply[0], reply[1]  # Redis 7 adds a third element (deleted ids)
            if entries:
                result.reclaimed += len(entries)
                log.warning("reclaimed %d pending entries of %s", len(entries), self.key)
                self.process(entries, result, redelivered=True)
            if start in (b"0-0", "0-0"):
                return

    def process(self, entries: list[Entry], result: DrainResult, redelivered: bool = False) -> None:
        """Store one chunk of entries, dead-letter the bad ones, then XACK all but those held back."""
        with paused_gc():
            chunk = Chunk(entries, redelivered=redelivered)
            self._process(chunk, result)

    def _process(self, chunk: Chunk, result: DrainResult) -> None:
        deliveries = self.deliveries(chunk.entries) if chunk.redelivered else {}
        last_errors = self.last_errors(deliveries) if deliveries else {}
        good: list[tuple[bytes, Batch]] = []
        self._sync_enrollments()
        for entry_id, fields in chunk.entries:
            count = deliveries.get(entry_id, 1)
            if count > self.max_deliveries:
                error = last_errors.get(entry_id) or "none recorded (the worker may have died storing it)"
                reason = f"delivered {count} times (INGEST_MAX_DELIVERIES={self.max_deliveries}); last error: {error}"
                chunk.dead.append((entry_id, b"", reason))
                chunk.counts[DELIVERIES_STAT] += 1
                continue
            batch = self.decode(chunk, entry_id, fields)
            if batch is not None:
                good.append((entry_id, batch))
        self._learn_size(len(good), sum(batch_size(batch) for _, batch in good))
        if good:
            solo = any(deliveries.get(entry_id, 1) >= SOLO_AFTER_DELIVERIES for entry_id, _ in good)
            if solo:
                for item in good:
                    self.store([item], chunk, result)
            else:
                for run in self._by_samples(good):
                    self.store(run, chunk, result)
        self.acknowledge(chunk)
        result.entries += len(chunk.entries)
        result.dead_lettered += len({entry_id for entry_id, _, _ in chunk.dead})
        result.counts.update(chunk.counts)

    def decode(self, chunk: Chunk, entry_id: bytes, fields: dict[bytes, bytes] | None) -> Batch | None:
        """Return the entry's batch, or None after noting why it is dead-lettered."""
        if fields is None:  # deleted from the stream while pending (XDEL, or a trim by hand)
            chunk.dead.append((entry_id, b"", "entry deleted from the stream before it was stored"))
            return None
        payload = fields.get(streams.PAYLOAD_FIELD, b"")
        try:  # before decoding: the signature covers the exact bytes
            signer = self.verifier.check(fields, payload)
        except signatures.Refused as exc:
            chunk.dead.append((entry_id, payload, str(exc)))
            chunk.counts[COUNTER_PREFIX + exc.code] += 1
            return None
        try:
            batch = decode_batch(payload)
        except WireError as exc:
            chunk.dead.append((entry_id, payload, str(exc)))
            return None
        if batch.kind != self.kind:
            chunk.dead.append((entry_id, payload, f"{batch.kind} batch on the {self.kind} stream"))
            return None
        if signer is not None:
            signer.apply(batch)  # the enrollment's host, never the batch's claim
        if self.max_batch_bytes and len(payload) > self.max_batch_bytes:
            reason = f"batch of {len(payload)} bytes exceeds LIMIT_BATCH_BYTES ({self.max_batch_bytes})"
            chunk.dead.append((entry_id, payload, reason))
            chunk.refuse(batch, host_limits.BATCH_BYTES)
            return None
        return batch

    def deliveries(self, entries: list[Entry]) -> dict[bytes, int]:
        """How many times each of `entries` (just read by this consumer) has been delivered."""
        pending = self.client.xpending_range(
            self.key,
            streams.CONSUMER_GROUP,
            min=entries[0][0],
            max=entries[-1][0],
            count=len(entries),
            consumername=self.consumer,
        )
        return {_bytes(item["message_id"]): int(item["times_delivered"]) for item in pending}

    def last_errors(self, deliveries: dict[bytes, int]) -> dict[bytes, str]:
        ids = [entry_id for entry_id, count in deliveries.items() if count > self.max_deliveries]
        if not ids:
            return {}
        values = self.client.hmget(self.errors_key, ids)
        return {entry_id: value.decode() for entry_id, value in zip(ids, values, strict=True) if value}

    def store(self, items: list[tuple[bytes, Batch]], chunk: Chunk, result: DrainResult) -> None:
        """Write `items` in one transaction; on a failure a batch caused, split and isolate it.

        Only an outage raises (failures.classify): Redis unreachable, the database read-only,
        unmigrated or without privilege, or a lost connection with the database still not
        answering. Everything else is the content's doing: halves are retried until the culprit
        stands alone, and it is dead-lettered (a data error) or held pending with its error
        (a database error although the database answers: a timeout, out of memory) so the
        delivery count ends it if it keeps failing.
        """
        batches = [batch for _, batch in items]
        try:
            prepare: Callable[[list[Batch]], None] | None = getattr(self.handler, "prepare", None)
            if prepare:
                prepare(batches)
            self._write(batches, chunk, result)
            return
        except Exception as exc:
            kind = failures.classify(exc)
            if kind in (Failure.REDIS, Failure.DEPLOYMENT, Failure.INTERRUPTED):
                raise
            if kind is Failure.DATABASE:
                problem = failures.database_problem()
                if problem is not None:
                    raise DependencyUnavailable(f"ingest of {self.key} stopped: {problem}") from exc
            if len(items) == 1:
                self.isolate(items[0], exc, kind, chunk)
                return
        middle = len(items) // 2
        self.store(items[:middle], chunk, result)
        self.store(items[middle:], chunk, result)

    def isolate(self, item: tuple[bytes, Batch], exc: Exception, kind: Failure, chunk: Chunk) -> None:
        entry_id, batch = item
        if kind is Failure.DATABASE:
            chunk.held[entry_id] = failures.describe(exc)
            log.warning("batch %s left pending after a database error: %s", batch.identity, exc)
            return
        log.exception("batch %s failed to store", batch.identity)
        chunk.dead.append((entry_id, b"", f"store failed: {failures.describe(exc)}"))

    def _write(self, batches: list[Batch], chunk: Chunk, result: DrainResult) -> None:
        """Store `batches` in one transaction, each identity once (identities.py has both claims).

        New entries (read with ">") are stored, then claimed with their row counts; if one of them
        was stored before, that transaction rolls back and the chunk is claimed first, as are the
        next CLAIM_FIRST_AFTER_DUPLICATE chunks and every chunk of redelivered entries.
        """
        connection.ensure_connection()
        stored: tuple[list[Batch], Any] | None = None
        if self.claim_first_chunks:
            self.claim_first_chunks -= 1
        elif not chunk.redelivered:
            stored = self._store_then_claim(batches)
        if stored is None:
            _reset(batches)
            with transaction.atomic(), connection.cursor() as wrapper:
                cursor = wrapper.cursor
                fresh = identities.claim_new(cursor, batches)
                outcome = self.handler(cursor, fresh) if fresh else 0
                identities.record_rows(cursor, fresh)
        else:
            fresh, outcome = stored
        rows, extra = (outcome, {}) if isinstance(outcome, int) else outcome
        duplicates = len(batches) - len(fresh)
        chunk.counts.update(extra)
        chunk.counts["batches_ingested"] += len(fresh)
        chunk.counts["batches_duplicate"] += duplicates
        for key, reasons in limits.refusals_of(fresh).items():
            chunk.refusals.setdefault(key, Counter()).update(reasons)
        result.batches += len(fresh)
        result.duplicates += duplicates
        result.rows += rows

    def _store_then_claim(self, batches: list[Batch]) -> tuple[list[Batch], Any] | None:
        """Store the chunk's distinct batches, then claim them; None (rolled back) if one was stored before."""
        fresh = identities.unique(batches)
        _reset(fresh)
        try:
            with transaction.atomic(), connection.cursor() as wrapper:
                cursor = wrapper.cursor
                outcome = self.handler(cursor, fresh)
                identities.claim_stored(cursor, fresh)
        except identities.AlreadyStored as exc:
            log.info("%s in a chunk of %s: claiming first", exc, self.key)
            self.claim_first_chunks = CLAIM_FIRST_AFTER_DUPLICATE
            return None
        except (psycopg.Error, DatabaseError) as exc:
            # A deadlock (SQLSTATE class 40) with a worker that claimed one of these identities
            # first and now waits for a host row this transaction updated: claiming first takes
            # no lock before the claim.
            cause = exc.__cause__ if isinstance(exc, DatabaseError) else exc
            if not (getattr(cause, "sqlstate", None) or "").startswith("40"):
                raise
            log.info("%s in a chunk of %s: claiming first", failures.describe(cause), self.key)
            self.claim_first_chunks = CLAIM_FIRST_AFTER_DUPLICATE
            return None
        return fresh, outcome

    def acknowledge(self, chunk: Chunk) -> None:
        """Dead-letter, count and XACK in one Redis transaction; record the errors of held entries.

        On a Redis Cluster: one transaction per shard's slot, the counters after it (_pipelines).
        """
        dead_pipe, ack_pipe, counters = self._pipelines()
        payload_of: dict[bytes, tuple[bytes, str]] = {}
        for entry_id, payload, reason in chunk.dead:
            payload_of[entry_id] = (payload, reason)
        for entry_id, (payload, reason) in payload_of.items():  # the trim job bounds this stream
            if not payload:
                payload = self._payload(entry_id)
            reason = reason if len(reason) <= MAX_REASON_CHARS else reason[:MAX_REASON_CHARS] + "..."
            dead_pipe.xadd(
                self.dead_key,
                {b"b": payload, b"reason": reason.encode(), b"stream": self.key.encode(), b"entry": entry_id},
            )
            log.error("dead-lettered entry %s of %s: %s", entry_id, self.key, reason)
        chunk.counts["batches_deadlettered"] += len(payload_of)
        stats.add(counters, chunk.counts)
        if chunk.refusals:
            host_limits.add(counters, chunk.refusals)
        ids = [entry_id for entry_id, _ in chunk.entries if entry_id not in chunk.held]
        if chunk.held:
            dead_pipe.hset(self.errors_key, mapping=chunk.held)
        if chunk.redelivered and ids:
            ack_pipe.hdel(self.errors_key, *ids)
        if ids:
            ack_pipe.xack(self.key, streams.CONSUMER_GROUP, *ids)
        dead_pipe.execute()  # dead letters are written before the XACK that drops the entries
        if ack_pipe is not dead_pipe:
            ack_pipe.execute()
        if counters is not dead_pipe:
            try:
                counters.execute()
            except failures.REDIS_OUTAGES as exc:  # the counters' master is down; the shard's is not
                log.warning("counters of %s not recorded (%s): %s", self.key, exc, dict(chunk.counts))
        if chunk.refusals:
            limits.refusal_log.note(chunk.refusals)

    def _sync_enrollments(self) -> None:
        """Refresh the enrollment cache; on a cluster whose master of that key is down, keep the cache."""
        try:
            self.verifier.begin_chunk()
        except failures.REDIS_OUTAGES as exc:
            if not is_cluster(self.client):
                raise
            log.warning("enrollments not refreshed (%s); the cached ones verify %s", exc, self.key)

    def _pipelines(self) -> tuple[Any, Any, Any]:
        """The pipelines of (dead letters and errors, XACK, counters) of one acknowledgement.

        One MULTI for all three on a plain Redis. On a Redis Cluster a transaction holds the
        keys of one slot: a shard's dead letters, errors and XACK share its hash tag and stay
        one MULTI on the shard's master, and the counters (other slots) follow in a second
        pipeline, so a crash between the two loses that chunk's counter increments, never an
        entry. The unsharded key has no hash tag: its dead letters are written first and the
        XACK follows (a crash between them may write a dead letter twice, never lose one).
        """
        if not is_cluster(self.client):
            pipe = self.client.pipeline(transaction=True)
            return pipe, pipe, pipe
        client: RedisCluster = self.client  # type: ignore[assignment]
        counters = client.pipeline(transaction=False)
        if client.keyslot(self.key) != client.keyslot(self.dead_key):
            return client.pipeline(transaction=False), client.pipeline(transaction=False), counters
        node = client.get_node_from_key(self.key)
        pipe = client.get_redis_connection(node).pipeline(transaction=True)
        return pipe, pipe, counters

    def _payload(self, entry_id: bytes) -> bytes:
        found = self.client.xrange(self.key, entry_id, entry_id, count=1)
        return found[0][1].get(streams.PAYLOAD_FIELD, b"") if found else b""


def batch_size(batch: Batch) -> int:
    """What INGEST_CHUNK_SAMPLES counts of a batch: its samples, or its log records."""
    return batch.sample_count() + len(batch.logs)


def _reset(batches: list[Batch]) -> None:
    """Forget what an earlier try noted on `batches`: a retry after a rollback starts from zero."""
    for batch in batches:
        batch.stored = 0
        batch.refused = None


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()
