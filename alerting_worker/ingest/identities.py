"""Record batch identities in the ingest transaction so a redelivered batch is stored once.

Two ways to claim, both inside the transaction that stores the rows (a rollback undoes the claim):

- claim first (`claim_new`, then `record_rows`): insert the identities, store only the batches
  whose identity was new, then write each one's row count. For chunks that may hold batches
  stored before (redelivered entries).
- store, then claim (`claim_stored`): store every batch of the chunk, then insert the identities
  with their row counts in one statement. If any identity already exists (stored before, or by a
  concurrent worker, whose uncommitted claim the insert waits for) the caller rolls the whole
  transaction back and claims first instead. One statement instead of two for the usual chunk of
  new entries.

The parameters travel as one JSON text each (json_to_recordset): quoting five arrays of 500
values on the client cost more worker CPU than the statements themselves.
"""

from __future__ import annotations

import json

from psycopg import Cursor

from shared.wire import Batch

Identity = tuple[str, int, int, str]


class AlreadyStored(Exception):
    """An identity of the chunk was claimed before: roll back, then claim first."""


def identity(batch: Batch) -> Identity:
    return (*batch.identity, batch.kind)


def unique(batches: list[Batch]) -> list[Batch]:
    """The first batch of each identity, in order (a chunk may hold the same batch twice)."""
    first: dict[Identity, Batch] = {}
    for batch in batches:
        first.setdefault(identity(batch), batch)
    return list(first.values())


def _records(batches: list[Batch], rows: bool) -> str:
    if rows:
        return json.dumps([[b.agent_id, b.epoch, b.seq, b.kind, b.stored] for b in batches])
    return json.dumps([[b.agent_id, b.epoch, b.seq, b.kind] for b in batches])


_COLUMNS = "SELECT x->>0, (x->>1)::bigint, (x->>2)::bigint, x->>3"
_RECORDS = "FROM json_array_elements(%s::json) AS x"


def claim_new(cursor: Cursor, batches: list[Batch]) -> list[Batch]:
    """Insert the identities of `batches`; return those not stored before, in order.

    Runs inside the caller's transaction: if the transaction rolls back, so do the claims.
    """
    if not batches:
        return []
    keys = unique(batches)
    cursor.execute(
        "INSERT INTO monitoring_ingestedbatch (agent_id, epoch, seq, kind, received_at, rows) "
        f"{_COLUMNS}, now(), 0 {_RECORDS} ON CONFLICT DO NOTHING RETURNING agent_id, epoch, seq, kind",
        [_records(keys, rows=False)],
    )
    fresh = {(row[0], row[1], row[2], row[3]) for row in cursor.fetchall()}
    return [batch for batch in keys if identity(batch) in fresh]


def record_rows(cursor: Cursor, batches: list[Batch]) -> None:
    """Store on each identity row how many rows its batch stored (in the same transaction)."""
    stored = [batch for batch in batches if batch.stored]
    if not stored:
        return
    cursor.execute(
        "UPDATE monitoring_ingestedbatch AS b SET rows = t.r "
        f"FROM ({_COLUMNS}, (x->>4)::int {_RECORDS}) AS t(a, e, s, k, r) "
        "WHERE b.agent_id = t.a AND b.epoch = t.e AND b.seq = t.s AND b.kind = t.k",
        [_records(stored, rows=True)],
    )


def claim_stored(cursor: Cursor, batches: list[Batch]) -> None:
    """Insert the identities of `batches` (distinct, all stored) with their row counts.

    Raise AlreadyStored if any of them exists: the caller's transaction must then roll back.
    """
    if not batches:
        return
    cursor.execute(
        "INSERT INTO monitoring_ingestedbatch (agent_id, epoch, seq, kind, received_at, rows) "
        f"{_COLUMNS}, now(), (x->>4)::int {_RECORDS} ON CONFLICT DO NOTHING",
        [_records(batches, rows=True)],
    )
    if cursor.rowcount != len(batches):
        raise AlreadyStored(f"{len(batches) - cursor.rowcount} of {len(batches)} batches stored before")
