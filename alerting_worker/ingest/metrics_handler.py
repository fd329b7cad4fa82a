"""Write metrics batches: upsert hosts, resolve series ids, binary-COPY the samples.

Version 1 rows are packed with one struct call each. Version 2 batches (shared/wire_v2.py) take
no per-sample Python step: their series ids are cached per (organisation, host, catalog bytes) as
one array, and their COPY rows are built as one numpy record array for the whole chunk.
"""

from __future__ import annotations

import json
import math
import struct
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from psycopg import Cursor

from alerting_worker.ingest import alert_trigger, rollup_marks
from alerting_worker.ingest.limits import Limits, host_agent_id
from collector_server.monitoring import partitions
from collector_server.orgs.scope import organisations_for_agents
from collector_server.redis_conn import get_redis
from shared.labels import labels_key
from shared.wire import Batch

if TYPE_CHECKING:
    import numpy as np

PG_EPOCH = 946_684_800  # 2000-01-01 in Unix seconds: binary timestamptz counts from there
FUTURE_TOLERANCE = timedelta(days=1)
_ROW = struct.Struct(">hiqiqid")
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_COPY_TRAILER = b"\xff\xff"
COPY_SQL = "COPY monitoring_sample (series_id, ts, value) FROM STDIN (FORMAT BINARY)"

SeriesKey = tuple[int, str, str]  # (organisation id, name, labels key)
# One advisory lock per host while its new series are counted and created (the high bits keep
# these keys apart from other advisory locks).
SERIES_LOCK_NAMESPACE = 0x4657 << 48


class SeriesCache:
    """Series ids known to be committed, per worker process.

    `series` maps the canonical key; `fast` maps what a batch literally carries
    (organisation, host, name, label items in the agent's order) so the hot path skips sorting.
    """

    LIMIT = 2_000_000
    # Version 2 catalogs cached, bounded by count and by the bytes their keys and ids hold (a catalog
    # may be megabytes: a hostile producer sending a new one each batch must not grow the worker).
    CATALOG_LIMIT = 100_000
    CATALOG_BYTES_LIMIT = 128 * 1024 * 1024

    def __init__(self) -> None:
        self.series: dict[SeriesKey, int] = {}
        self.fast: dict[tuple, int] = {}
        # Version 2: (organisation id, host, catalog bytes) -> series id of each catalog index.
        self.catalogs: dict[tuple[int, str, bytes], np.ndarray] = {}
        self.catalog_bytes = 0

    def clear(self) -> None:
        self.series.clear()
        self.fast.clear()
        self.catalogs.clear()
        self.catalog_bytes = 0

    def add_catalogs(self, learned: dict[tuple[int, str, bytes], np.ndarray]) -> None:
        size = sum(len(key[2]) + sids.nbytes for key, sids in learned.items())
        if (
            len(self.catalogs) + len(learned) > self.CATALOG_LIMIT
            or self.catalog_bytes + size > self.CATALOG_BYTES_LIMIT
        ):
            self.catalogs.clear()
            self.catalog_bytes = 0
        self.catalogs.update(learned)
        self.catalog_bytes += size

    def add(self, found: dict[SeriesKey, int], fast: dict[tuple, int]) -> None:
        if len(self.fast) > self.LIMIT:
            self.clear()
        self.series.update(found)
        self.fast.update(fast)


CACHE = SeriesCache()


class MetricsHandler:
    """The ingest handler for kind "metrics" (see docs/contracts.md)."""

    def __init__(self, cache: SeriesCache = CACHE, limits: Limits | None = None) -> None:
        self.cache = cache
        self.limits = limits

    def prepare(self, batches: list[Batch]) -> None:
        """Create the day partitions these batches need, outside the ingest transaction.

        For a chunk, the days of each batch's send time, of every version 2 point (one numpy pass)
        and of each version 1 batch's first and last series' edge points (an agent stamps a cycle
        with one time). For a single batch every series is looked at: a chunk whose COPY finds no partition for some row fails as a data
        error, and the consumer retries its batches one at a time, each prepared exactly.
        """
        now_day = int(time.time() // 86400)
        oldest = now_day - settings.RAW_RETENTION_DAYS
        days = set()
        exact = len(batches) == 1
        version_2 = []
        for batch in batches:
            days.add(int(batch.sent_at // 86400))
            if batch.points is not None:
                if len(batch.points):
                    version_2.append(batch)
                continue
            edges = batch.series if exact else batch.series[:1] + batch.series[-1:]
            for series in edges:
                points = series.points
                if points:
                    days.update(
                        int(point[0] // 86400) for point in (points if exact else (points[0], points[-1]))
                    )
        if version_2:  # every point's day at once; the range between is filled below
            point_days = joined_points(version_2)["ts"] // 86400
            point_days = point_days[(point_days >= oldest) & (point_days < now_day + 2)]
            if len(point_days):
                days.update((int(point_days.min()), int(point_days.max())))
        days = {day for day in days if oldest <= day <= now_day + 1}  # the rest is refused in pack_rows
        if len(days) > 1:
            days = set(range(min(days), max(days) + 1))
        for day in sorted(days):
            partitions.ensure_partition(partitions.SAMPLES, datetime.fromtimestamp(day * 86400, UTC).date())

    def __call__(self, cursor: Cursor, batches: list[Batch]) -> tuple[int, Counter[str]]:
        counts: Counter[str] = Counter()
        if not batches:
            return 0, counts
        limits = self.limits or Limits.from_settings()
        host_ids = upsert_hosts(cursor, batches)
        fast = self.cache.fast
        wanted: dict[SeriesKey, tuple[str, dict[str, str], int]] = {}
        plan: list[tuple[int | SeriesKey, list[list[float]], Batch]] = []
        slow: dict[tuple, SeriesKey] = {}
        catalogs = self.cache.catalogs
        warm: list[tuple[Batch, np.ndarray]] = []  # version 2 batches whose catalog ids are cached
        cold: list[tuple[Batch, tuple[int, str, bytes], list[int | SeriesKey | None]]] = []
        cold_in_chunk: dict[tuple[int, str, bytes], tuple[list[int | SeriesKey | None], list[str]]] = {}
        for batch in batches:
            host, (host_id, org_id) = batch.host, host_ids[batch.agent_id]
            if batch.catalog is not None:
                catalog_key = (org_id, host, batch.catalog.raw)
                sids = catalogs.get(catalog_key)
                if sids is not None:
                    warm.append((batch, sids))
                    continue
                seen = cold_in_chunk.get(catalog_key)
                if seen is not None:  # the same agent's catalog earlier in this chunk: resolved once
                    for problem in seen[1]:
                        batch.refuse(problem)
                    cold.append((batch, catalog_key, seen[0]))
                    continue
                entries: list[int | SeriesKey | None] = []
                problems: list[str] = []
                for name, mtype, series_labels in zip(
                    batch.catalog.names, batch.catalog.types, batch.catalog.labels, strict=True
                ):
                    literal = (org_id, host, name, *series_labels.items())
                    sid = fast.get(literal)
                    if sid is not None:
                        entries.append(sid)
                        continue
                    problem = limits.label_problem(series_labels)
                    if problem is not None:
                        batch.refuse(problem)
                        problems.append(problem)
                        entries.append(None)
                        continue
                    labels = dict(series_labels)
                    labels["host"] = host
                    key = (org_id, name, labels_key(labels))
                    slow[literal] = key
                    if key not in self.cache.series:
                        wanted[key] = (mtype, labels, host_id)
                    entries.append(key)
                cold.append((batch, catalog_key, entries))
                cold_in_chunk[catalog_key] = (entries, problems)
                continue
            for series in batch.series:
                literal = (org_id, host, series.name, *series.labels.items())
                sid = fast.get(literal)
                if sid is not None:
                    plan.append((sid, series.points, batch))
                    continue
                problem = limits.label_problem(series.labels)
                if problem is not None:
                    batch.refuse(problem)
                    continue
                labels = dict(series.labels)
                labels["host"] = host
                key = (org_id, series.name, labels_key(labels))
                slow[literal] = key
                if key not in self.cache.series:
                    wanted[key] = (series.type, labels, host_id)
                plan.append((key, series.points, batch))
        refused: dict[SeriesKey, str] = {}
        ids = self.resolve(cursor, set(slow.values()), wanted, limits, refused) if slow else {}
        if slow:
            learned = {literal: ids[key] for literal, key in slow.items() if key in ids}
            transaction.on_commit(lambda: self.cache.add({}, learned), robust=True)
        data, rows, oldest = pack_rows(plan, ids, counts, refused)
        if warm or cold:
            resolved: dict[tuple[int, str, bytes], np.ndarray] = {}
            for batch, catalog_key, entries in cold:
                sids = resolved.get(catalog_key)  # nothing refused in it: nothing to note on the batch
                if sids is not None:
                    warm.append((batch, sids))
                    continue
                sids = catalog_ids(entries, ids, refused, batch)
                warm.append((batch, sids))
                if entries and not (sids < 0).any():
                    resolved[catalog_key] = sids
            if resolved:
                transaction.on_commit(lambda: self.cache.add_catalogs(resolved), robust=True)
            extra, extra_rows, extra_oldest = pack_points(warm, counts)
            if extra_rows:
                data = data[: -len(_COPY_TRAILER)] + extra + _COPY_TRAILER
                rows += extra_rows
                oldest = min(oldest, extra_oldest)
        if rows:
            data = sort_rows(data, rows)
            with cursor.copy(COPY_SQL) as copy:
                copy.write(data)
        counts["samples_ingested"] += rows
        if rows:
            names = {series.name for batch in batches for series in batch.series}
            for batch in batches:
                if batch.catalog is not None:
                    names.update(batch.catalog.names)
            # After the commit, and never able to turn a stored chunk into a failed one.
            transaction.on_commit(lambda: alert_trigger.notify(get_redis(), names), robust=True)
            if oldest < time.time() - rollup_marks.LATE_AFTER_SECONDS:
                transaction.on_commit(lambda: rollup_marks.mark_late(get_redis(), oldest), robust=True)
        return rows, counts

    def resolve(
        self,
        cursor: Cursor,
        needed: set[SeriesKey],
        wanted: dict[SeriesKey, tuple[str, dict[str, str], int]],
        limits: Limits | None = None,
        refused: dict[SeriesKey, str] | None = None,
    ) -> dict[SeriesKey, int]:
        """Return the ids of the `needed` series keys, creating the `wanted` ones the cache lacks.

        New series go through the per-host series limits; those refused are left out of the
        result and named in `refused` (key -> reason).
        """
        known = self.cache.series
        ids = {key: known[key] for key in needed if key in known}
        if not wanted:
            return ids
        if limits is not None and (limits.series_per_host or limits.new_series_per_hour):
            existing = self.lookup(cursor, sorted(wanted))
            ids.update(existing)
            new = {key: value for key, value in wanted.items() if key not in existing}
            wanted = admit(cursor, new, limits, refused if refused is not None else {}) if new else {}
            if not wanted:
                return ids
        keys = sorted(wanted)  # one order for every worker: no deadlocks between inserts
        # The rows travel as one JSON text (quoting six lists of values on the client cost more);
        # WITH ORDINALITY keeps the sorted order for the inserts.
        cursor.execute(
            "INSERT INTO monitoring_series (organization_id, name, kind, labels, labels_key, host_id, created_at) "
            "SELECT (x->>0)::bigint, x->>1, x->>2, (x->3)::jsonb, x->>4, (x->>5)::bigint, now() "
            "FROM json_array_elements(%s::json) WITH ORDINALITY AS t(x, i) ORDER BY i "
            "ON CONFLICT (organization_id, name, labels_key) DO NOTHING "
            "RETURNING id, organization_id, name, labels_key",
            [json.dumps([[k[0], k[1], wanted[k][0], wanted[k][1], k[2], wanted[k][2]] for k in keys])],
        )
        created = {(org, name, lk): sid for sid, org, name, lk in cursor.fetchall()}
        missing = [k for k in keys if k not in created]
        existing = self.lookup(cursor, missing) if missing else {}
        # Series created in this transaction exist for others only once it commits.
        transaction.on_commit(lambda: self.cache.add(created, {}), robust=True)
        ids.update(existing)
        ids.update(created)
        return ids

    def lookup(self, cursor: Cursor, keys: list[SeriesKey]) -> dict[SeriesKey, int]:
        """Return the ids of those of `keys` that exist (committed), remembering them."""
        cursor.execute(
            "SELECT s.id, s.organization_id, s.name, s.labels_key FROM monitoring_series s "
            "JOIN (SELECT (x->>0)::bigint, x->>1, x->>2 FROM json_array_elements(%s::json) AS x) AS t(o, n, lk) "
            "ON s.organization_id = t.o AND s.name = t.n AND s.labels_key = t.lk",
            [json.dumps(keys)],
        )
        existing = {(org, name, lk): sid for sid, org, name, lk in cursor.fetchall()}
        self.cache.series.update(existing)
        return existing


def admit(
    cursor: Cursor,
    new: dict[SeriesKey, tuple[str, dict[str, str], int]],
    limits: Limits,
    refused: dict[SeriesKey, str],
) -> dict[SeriesKey, tuple[str, dict[str, str], int]]:
    """Return the `new` series their hosts may still create; name the others in `refused`.

    Takes a per-host advisory lock (held to the end of the transaction, in host order) so two
    workers cannot both spend the same budget.
    """
    by_host: dict[int, list[SeriesKey]] = {}
    for key, (_, _, host_id) in new.items():
        by_host.setdefault(host_id, []).append(key)
    hosts = sorted(by_host)
    cursor.execute(
        "SELECT pg_advisory_xact_lock(%s + h) FROM unnest(%s::bigint[]) AS t(h)",
        [SERIES_LOCK_NAMESPACE, hosts],
    )
    cursor.execute(
        "SELECT host_id, count(*), count(*) FILTER (WHERE created_at > now() - interval '1 hour') "
        "FROM monitoring_series WHERE host_id = ANY(%s::bigint[]) GROUP BY host_id",
        [hosts],
    )
    state = {host_id: (total, recent) for host_id, total, recent in cursor.fetchall()}
    admitted = {}
    for host_id in hosts:
        total, recent = state.get(host_id, (0, 0))
        keys = sorted(by_host[host_id])
        budget = limits.series_budget(total, recent)
        allowed = keys if budget is None else keys[:budget]
        for key in allowed:
            admitted[key] = new[key]
        if len(allowed) < len(keys):
            reason = limits.budget_reason(total + len(allowed), recent + len(allowed))
            for key in keys[len(allowed) :]:
                refused[key] = reason
    return admitted


def pack_rows(
    plan: list[tuple[int | SeriesKey, list[list[float]], Batch]],
    ids: dict[SeriesKey, int],
    counts: Counter[str],
    refused: dict[SeriesKey, str] | None = None,
) -> tuple[bytes, int, float]:
    """Return the binary COPY payload, its row count and its oldest timestamp; count the points refused.

    Adds each batch's rows to its `stored`; a series over a per-host limit (in `refused`) is noted
    on its batch instead.
    """
    now = time.time()
    oldest = now - settings.RAW_RETENTION_DAYS * 86400
    newest = now + FUTURE_TOLERANCE.total_seconds()
    pack = _ROW.pack
    chunks = [_COPY_HEADER]
    rows = 0
    lowest = now
    for key, points, batch in plan:
        sid = key if type(key) is int else ids.get(key)
        if sid is None:
            batch.refuse(refused[key] if refused else "unknown")
            continue
        before = rows
        if points and points[0][0] < lowest:
            lowest = max(points[0][0], oldest)
        for ts, value in points:
            if ts < oldest:
                counts["samples_rejected_too_old"] += 1
            elif ts > newest:
                counts["samples_rejected_future"] += 1
            elif not math.isfinite(value):
                counts["samples_rejected_invalid"] += 1
            else:
                chunks.append(pack(3, 8, sid, 8, int((ts - PG_EPOCH) * 1_000_000), 8, float(value)))
                rows += 1
        batch.stored += rows - before
    chunks.append(_COPY_TRAILER)
    return b"".join(chunks), rows, lowest


def catalog_ids(
    entries: list[int | SeriesKey | None],
    ids: dict[SeriesKey, int],
    refused: dict[SeriesKey, str],
    batch: Batch,
) -> np.ndarray:
    """The series id of each catalog index (-1: refused by a per-host limit, noted on the batch)."""
    import numpy as np

    out = []
    for entry in entries:
        if entry is None:  # refused for its labels, already noted
            out.append(-1)
        elif type(entry) is int:
            out.append(entry)
        elif entry in ids:
            out.append(ids[entry])
        else:
            batch.refuse(refused.get(entry, "unknown"))
            out.append(-1)
    return np.array(out, dtype=np.int64)


_ROW_DTYPE = None


def row_dtype() -> np.dtype:
    """One binary COPY row of (series_id, ts, value) as a numpy record (what _ROW packs)."""
    import numpy as np

    global _ROW_DTYPE
    if _ROW_DTYPE is None:
        _ROW_DTYPE = np.dtype(
            [
                ("n", ">i2"),
                ("l1", ">i4"),
                ("sid", ">i8"),
                ("l2", ">i4"),
                ("ts", ">i8"),
                ("l3", ">i4"),
                ("v", ">f8"),
            ]
        )
    return _ROW_DTYPE


def sort_rows(data: bytes, rows: int) -> bytes:
    """The binary COPY payload `data` (header, `rows` rows, trailer) with its rows in series id order.

    The rows then reach the `(series_id, ts)` index in about its own order: each leaf page is visited
    once per chunk instead of once per row, which cuts the COPY's Postgres CPU by about a third
    for a chunk of many hosts' batches (docs/performance.md, "Ingest").
    """
    import numpy as np

    if rows < 2:
        return data
    table = np.frombuffer(data, dtype=row_dtype(), count=rows, offset=len(_COPY_HEADER))
    # By series id alone (an unstable sort, 5x cheaper than by both keys): a series' few rows in
    # a chunk land on the same leaf pages in any order. The rows move as opaque 38-byte records.
    order = np.argsort(table["sid"].astype(np.int64))
    records = np.frombuffer(data, dtype=f"V{_ROW.size}", count=rows, offset=len(_COPY_HEADER))
    return b"".join((_COPY_HEADER, np.take(records, order).tobytes(), _COPY_TRAILER))


def joined_points(batches: list[Batch]) -> np.ndarray:
    """The points of version 2 `batches` (none empty) as one array, joined as bytes.

    np.concatenate of hundreds of structured arrays costs ten times more (it promotes the
    fields' dtypes pair by pair).
    """
    import numpy as np

    return np.frombuffer(
        b"".join([np.ascontiguousarray(batch.points).data for batch in batches]),
        dtype=batches[0].points.dtype,
    )


def pack_points(batches: list[tuple[Batch, np.ndarray]], counts: Counter[str]) -> tuple[bytes, int, float]:
    """Binary COPY rows (no header or trailer) of version 2 batches, given each one's catalog ids.

    One numpy pass over the chunk's points: the same refusals, counts and `stored` as pack_rows.
    """
    import numpy as np

    now = time.time()
    batches = [(batch, sids) for batch, sids in batches if len(batch.points)]
    if not batches:
        return b"", 0, now
    oldest = now - settings.RAW_RETENTION_DAYS * 86400
    newest = now + FUTURE_TOLERANCE.total_seconds()
    lengths = np.fromiter((len(batch.points) for batch, _ in batches), dtype=np.int64, count=len(batches))
    sizes = np.fromiter((len(sids) for _, sids in batches), dtype=np.int64, count=len(batches))
    points = joined_points([batch for batch, _ in batches])
    all_sids = np.concatenate([sids for _, sids in batches])
    offsets = np.repeat(np.cumsum(sizes) - sizes, lengths)
    sid = all_sids[points["i"].astype(np.int64) + offsets]
    ts = points["ts"].astype(np.float64)
    value = points["v"].astype(np.float64)
    known = sid >= 0  # refused series: noted per series on their batch, their points not counted
    too_old = known & (ts < oldest)
    future = known & ~too_old & (ts > newest)
    invalid = known & ~too_old & ~future & ~np.isfinite(value)
    keep = known & ~too_old & ~future & ~invalid
    counts["samples_rejected_too_old"] += int(too_old.sum())
    counts["samples_rejected_future"] += int(future.sum())
    counts["samples_rejected_invalid"] += int(invalid.sum())
    owner = np.repeat(np.arange(len(batches)), lengths)
    per_batch = np.bincount(owner[keep], minlength=len(batches)).tolist()
    for (batch, _), stored in zip(batches, per_batch, strict=True):
        batch.stored += stored
    rows = int(keep.sum())
    if not rows:
        return b"", 0, now
    kept_ts = ts[keep]
    out = np.empty(rows, dtype=row_dtype())
    out["n"] = 3
    out["l1"] = 8
    out["sid"] = sid[keep]
    out["l2"] = 8
    out["ts"] = ((kept_ts - PG_EPOCH) * 1_000_000).astype(np.int64)
    out["l3"] = 8
    out["v"] = value[keep]
    return out.tobytes(), rows, max(float(kept_ts.min()), oldest)


def upsert_hosts(cursor: Cursor, batches: list[Batch]) -> dict[str, tuple[int, int]]:
    """Create or refresh the host of every agent in the chunk; return batch agent id -> (host id, org id).

    A new host goes to ``organisation_for_host``'s organisation; an existing one keeps its own.

    The agent's own batches set the host's name, labels and version; batches of its
    components (an id with a '/suffix') only refresh last_seen. last_seen is when the batch
    is stored (the transaction's time), never the producer's clock, so it is never before
    first_seen. A host whose name, labels and version are unchanged and whose last_seen is less
    than HOST_TOUCH_SECONDS old is only read, not written: a backlog of many batches per host
    (a worker catching up) does not rewrite the same host row for each of them.
    """
    latest: dict[str, Batch] = {}
    for batch in batches:
        key = host_agent_id(batch.agent_id)
        current = latest.get(key)
        own = batch.agent_id == key
        # Prefer the agent's own batches, then the newest.
        if current is None or (own, batch.sent_at) >= (current.agent_id == key, current.sent_at):
            latest[key] = batch
    agents = sorted(latest)
    by_host: dict[str, tuple[int, int]] = {}
    cursor.execute(
        "SELECT agent_id, id, organization_id, hostname, labels, agent_version FROM monitoring_host "
        "WHERE agent_id = ANY(ARRAY(SELECT json_array_elements_text(%s::json))) "
        "AND last_seen > now() - make_interval(secs => %s)",
        [json.dumps(agents), HOST_TOUCH_SECONDS],  # one JSON text: quoting a list per value costs more
    )
    for agent_id, host_id, org_id, hostname, labels, version in cursor.fetchall():
        batch = latest[agent_id]
        if type(labels) is str:
            labels = json.loads(labels)
        if batch.host == hostname and (
            batch.agent_id != agent_id or (batch.host_labels, batch.agent_version) == (labels, version)
        ):
            by_host[agent_id] = (host_id, org_id)
    stale = [agent_id for agent_id in agents if agent_id not in by_host]
    if stale:
        by_host.update(_write_hosts(cursor, stale, latest))
    return {batch.agent_id: by_host[host_agent_id(batch.agent_id)] for batch in batches}


# A host row is rewritten at most this often while nothing but its last_seen would change
# (well below HOST_DOWN_AFTER_SECONDS, at least 10 s, and below any agent's usual interval).
HOST_TOUCH_SECONDS = 5.0


def _write_hosts(cursor: Cursor, agents: list[str], latest: dict[str, Batch]) -> dict[str, tuple[int, int]]:
    orgs = organisations_for_agents(agents)
    cursor.execute(
        "INSERT INTO monitoring_host (agent_id, hostname, labels, agent_version, first_seen, last_seen, "
        "organization_id) "
        "SELECT a, h, l::jsonb, v, now(), now(), o FROM unnest(%s::text[], %s::text[], %s::text[], "
        "%s::text[], %s::bigint[]) AS x(a, h, l, v, o) "
        "ON CONFLICT (agent_id) DO UPDATE SET "
        "hostname = EXCLUDED.hostname, "
        "labels = CASE WHEN EXCLUDED.agent_version = '' THEN monitoring_host.labels ELSE EXCLUDED.labels END, "
        "agent_version = CASE WHEN EXCLUDED.agent_version = '' THEN monitoring_host.agent_version "
        "ELSE EXCLUDED.agent_version END, "
        "last_seen = GREATEST(monitoring_host.last_seen, EXCLUDED.last_seen) RETURNING id, agent_id, organization_id",
        [
            agents,
            [latest[a].host for a in agents],
            [json.dumps(latest[a].host_labels, sort_keys=True) for a in agents],
            # A component's batch carries no version of the agent: '' keeps the stored one.
            [latest[a].agent_version if latest[a].agent_id == a else "" for a in agents],
            [orgs[a] for a in agents],
        ],
    )
    return {agent_id: (host_id, org_id) for host_id, agent_id, org_id in cursor.fetchall()}
