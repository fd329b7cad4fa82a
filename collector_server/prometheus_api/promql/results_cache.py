"""A results cache for the fast path, like Mimir's and Thanos' query-frontend.

A dashboard refreshing `sum by (host) (rate(x[5m]))` over the last 24 hours every minute asks
again for 23 h 59 m it was just given. The range is split into blocks of BLOCK_STEPS steps
aligned in absolute time (the same step, the same phase: the same blocks call after call);
a block whose every window lies entirely before the **immutable bound** is kept in Redis and
only the rest (the live tail, and blocks not cached yet) is computed by vectorised.py, one
statement per run of consecutive missing blocks. Each step's window is computed on its own,
so a block's points do not depend on the blocks beside it: the answer is the same as
without the cache (tests/prometheus_api/test_results_cache.py).

Immutable bound: the level's rollup watermark (RollupState.done_until) minus the rollup job's
own overlap (LATE_TOLERANCE): before it, buckets change only when

* late samples arrive (ingest marks them, rollup_marks.mark_late) and the job rolls them up
  again: both bump the **generation**, which is part of every key (the bump after the job's
  pass also drops what was computed from the buckets between the late sample and its roll-up);
* retention drops partitions: enforce_retention bumps the generation when it dropped any;
* the series change (a host deleted): the selected series ids are part of the key.

The generation is a random token (not a counter: a lost key never walks back to old
generations whose blocks may still be live). A bump that fails is not dropped: the callers
give their late mark back (or set one) so the next rollup run bumps again.

Blocks are only stored when the query read the primary: with DATABASE_REPLICA_URL a lagging
replica may still hold buckets from before a re-roll whose bump is already in Redis, and they
would be cached under the new generation. Reads on the replica still use cached blocks
(computed from the primary).

Keys hold the organisation scope, the query's shape (function, window, offset, aggregation,
labels), the step, the level, the series and the block's first and last step: two
organisations never share an entry, even for the same query text. Entries expire after TTL.
A Redis error skips the cache (the answer is computed), it never fails the query.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from datetime import timedelta

from django.conf import settings
from redis.exceptions import RedisError

from collector_server.monitoring import query as monitoring_query
from collector_server.monitoring.query import LEVEL_SECONDS, SeriesInfo
from collector_server.prometheus_api.promql import vectorised
from collector_server.prometheus_api.promql.values import Steps
from collector_server.redis_conn import get_redis
from collector_server.replica import PRIMARY, read_alias
from shared import streams

log = logging.getLogger(__name__)

BLOCK_STEPS = 60  # an hour of a 60 s step, 10 hours of a 600 s one
TTL = timedelta(hours=6)
# The rollup job recomputes this much before its watermark on every run (rollups.LATE_TOLERANCE).
LATE_TOLERANCE_MS = 5 * 60 * 1000


def generation_key() -> str:
    return f"{streams.prefix()}:promql:results:generation"


def new_generation() -> str:
    """A fresh random generation token (never one used before, even if the key was lost)."""
    return uuid.uuid4().hex


def bump_generation(client=None) -> bool:
    """Make every cached block unreachable (late data rolled up, partitions dropped).

    False when Redis refused: the caller must keep the invalidation pending (a late mark).
    """
    try:
        (client or get_redis()).set(generation_key(), new_generation())
    except RedisError:
        log.warning("promql results cache: could not bump the generation", exc_info=True)
        return False
    return True


def current_generation(client) -> str:
    """The generation token; a missing key (never set, evicted, deleted) gets a fresh one."""
    value = client.get(generation_key())
    if value is None:
        client.set(generation_key(), new_generation(), nx=True)
        value = client.get(generation_key())
    return value.decode() if isinstance(value, bytes) else str(value)


def enabled() -> bool:
    return bool(getattr(settings, "PROMQL_RESULTS_CACHE", True))


def _blocks(steps: Steps) -> list[tuple[int, int]]:
    """(first k, last k) of each block of the steps, blocks aligned in absolute time."""
    width = steps.step_ms * BLOCK_STEPS
    out: list[tuple[int, int]] = []
    k = 0
    while k < steps.count:
        t = steps.start_ms + k * steps.step_ms
        last_t = min(steps.end_ms, (t // width + 1) * width - 1)
        last = (last_t - steps.start_ms) // steps.step_ms
        out.append((k, last))
        k = last + 1
    return out


def _encode(fragments: dict[int, str]) -> str:
    """A block's fragments as `gid<TAB>points` lines (points JSON has neither: no escaping)."""
    return "\n".join(f"{gid}\t{text}" for gid, text in fragments.items())


def _decode(value: bytes) -> dict[int, str]:
    out = {}
    for line in value.decode().split("\n") if value else ():
        gid, text = line.split("\t", 1)
        out[int(gid)] = text
    return out


def matrix_arrays(
    series: list[SeriesInfo],
    gids: list[int],
    groups: int,
    steps: Steps,
    range_ms: int,
    offset_ms: int,
    level: str,
    function: str,
    op: str | None,
    shape: object,
) -> dict[int, str] | None:
    """vectorised.matrix_arrays, with the blocks before the immutable bound kept in Redis.

    `shape` identifies the query and its caller (organisation scope, labels of the groups):
    any JSON-serialisable value; it is hashed into the keys.
    """
    done = monitoring_query.done_until(level)
    if done is None:
        return vectorised.matrix_arrays(series, gids, groups, steps, range_ms, offset_ms, level, function, op)
    bound = int(done.timestamp() * 1000) - LATE_TOLERANCE_MS
    width = LEVEL_SECONDS[level] * 1000
    asked = steps
    steps, skip = _whole_head(steps, bound, width, offset_ms)
    blocks = _blocks(steps)

    def times(k: int) -> int:
        return steps.start_ms + k * steps.step_ms

    # The last bucket a step's window reads is the one starting at t - offset (its first sample).
    cacheable = [times(last) - offset_ms + width <= bound for _, last in blocks]
    client = get_redis()
    try:
        generation = current_generation(client)
        identity = hashlib.sha256(
            json.dumps(
                [
                    shape,
                    function,
                    op,
                    range_ms,
                    offset_ms,
                    steps.step_ms,
                    level,
                    [s.id for s in series],
                    gids,
                ],
                sort_keys=True,
                default=str,
            ).encode()
        ).hexdigest()
        keys = [
            f"{streams.prefix()}:promql:results:{generation}:{identity}:{times(first)}:{times(last)}"
            for first, last in blocks
        ]
        wanted = [key for key, ok in zip(keys, cacheable, strict=True) if ok]
        found = dict(zip(wanted, client.mget(wanted), strict=True)) if wanted else {}
    except RedisError:
        log.warning("promql results cache unavailable; computing the whole range", exc_info=True)
        return vectorised.matrix_arrays(series, gids, groups, steps, range_ms, offset_ms, level, function, op)
    parts: list[dict[int, str] | None] = [
        _decode(found[key]) if found.get(key) is not None else None for key in keys
    ]
    to_store: dict[str, str] = {}
    # Only what was computed from the primary is stored (a lagging replica: module docstring).
    store = read_alias() == PRIMARY
    i = 0
    while i < len(blocks):
        if parts[i] is not None:
            i += 1
            continue
        j = i
        while j + 1 < len(blocks) and parts[j + 1] is None:
            j += 1
        run = Steps(times(blocks[i][0]), times(blocks[j][1]), steps.step_ms)
        computed = vectorised.group_values(
            series, gids, groups, run, range_ms, offset_ms, level, function, op
        )
        if computed is None:
            return None
        values, present = computed
        for b in range(i, j + 1):
            first, last = blocks[b]
            lo, hi = first - blocks[i][0], last - blocks[i][0] + 1
            block_steps = Steps(times(first), times(last), steps.step_ms)
            parts[b] = vectorised.fragments(values[:, lo:hi], present[:, lo:hi], block_steps)
            if cacheable[b] and store:
                to_store[keys[b]] = _encode(parts[b])
        i = j + 1
    if to_store:
        try:
            pipe = client.pipeline(transaction=False)
            for key, value in to_store.items():
                pipe.set(key, value, ex=int(TTL.total_seconds()))
            pipe.execute()
        except RedisError:
            log.warning("promql results cache: could not store blocks", exc_info=True)
    if skip:  # the head block was computed or found whole: answer from the asked start on
        head = vectorised.timestamps(Steps(asked.start_ms, times(blocks[0][1]), steps.step_ms))
        parts[0] = {gid: cut for gid, text in (parts[0] or {}).items() if (cut := _from(text, head))}
    out: dict[int, str] = {}
    for gid in range(groups):
        texts = [part[gid] for part in parts if part and gid in part]
        if texts:
            out[gid] = "[" + ",".join(texts) + "]"
    return out


def _whole_head(steps: Steps, bound: int, width: int, offset_ms: int) -> tuple[Steps, int]:
    """The steps extended back to the start of their first block, when that block can be kept.

    A dashboard's range starts inside a block, a step later on every refresh: its first block
    would never be whole, so never kept, and be computed again each time. Computed whole
    (at most BLOCK_STEPS - 1 steps more, once), it is kept and the next refresh finds it; the
    answer leaves out the steps before the asked start. Returns (steps, steps prepended).
    """
    block_ms = steps.step_ms * BLOCK_STEPS
    block_start = steps.start_ms // block_ms * block_ms
    skip = (steps.start_ms - block_start) // steps.step_ms
    if skip == 0:
        return steps, 0
    whole = Steps(steps.start_ms - skip * steps.step_ms, steps.end_ms, steps.step_ms)
    first_last = _blocks(whole)[0][1]
    if whole.start_ms + first_last * steps.step_ms - offset_ms + width > bound:
        return steps, 0  # the first block is live: nothing to keep, compute only what is asked
    return whole, skip


def _from(fragment: str, head: list[str]) -> str | None:
    """A block fragment's points from the first of `head` on (None: it has none there).

    `head` is vectorised.timestamps of the steps wanted: every point starts with its time's
    `[<time>,"`, which no value contains, so the first one found is where the answer begins.
    """
    for prefix in head:
        at = fragment.find(prefix)
        if at >= 0:
            return fragment[at:]
    return None
