"""Record batch identities in the ingest transaction so a redelivered batch is stored once."""

from __future__ import annotations

from psycopg import Cursor

from shared.wire import Batch


def claim_new(cursor: Cursor, batches: list[Batch]) -> list[Batch]:
    """Insert the identities of `batches`; return those not stored before, in order.

    Runs inside the caller's transaction: if the transaction rolls back, so do the claims.
    """
    if not batches:
        return []
    unique: dict[tuple[str, int, int, str], Batch] = {}
    for batch in batches:
        unique.setdefault((*batch.identity, batch.kind), batch)
    keys = list(unique)
    cursor.execute(
        "INSERT INTO monitoring_ingestedbatch (agent_id, epoch, seq, kind, received_at, rows) "
        "SELECT a, e, s, k, now(), 0 FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::text[]) "
        "AS t(a, e, s, k) ON CONFLICT DO NOTHING RETURNING agent_id, epoch, seq, kind",
        [[k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys], [k[3] for k in keys]],
    )
    fresh = {(row[0], row[1], row[2], row[3]) for row in cursor.fetchall()}
    return [unique[key] for key in keys if key in fresh]


def record_rows(cursor: Cursor, batches: list[Batch]) -> None:
    """Store on each identity row how many rows its batch stored (in the same transaction)."""
    stored = [batch for batch in batches if batch.stored]
    if not stored:
        return
    cursor.execute(
        "UPDATE monitoring_ingestedbatch AS b SET rows = t.r "
        "FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::text[], %s::int[]) AS t(a, e, s, k, r) "
        "WHERE b.agent_id = t.a AND b.epoch = t.e AND b.seq = t.s AND b.kind = t.k",
        [
            [b.agent_id for b in stored],
            [b.epoch for b in stored],
            [b.seq for b in stored],
            [b.kind for b in stored],
            [b.stored for b in stored],
        ],
    )
