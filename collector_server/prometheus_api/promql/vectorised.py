"""The fast path's windows, aggregation and JSON computed with numpy over binary-copied buckets.

For `sum by (host) (rate(x[5m]))` over a day at a one-minute step, Postgres spends most of
its time not reading the 144,000 one-minute buckets but running window functions, the
extrapolation formula and json_agg row by row (docs/performance.md). Here Postgres only
reads the buckets and sends them as one bytea of fixed-width binary records (no text, no
row-by-row transfer, no Python object per bucket) and numpy does the rest on whole arrays:

* the buckets are laid on a grid (series x bucket), absent buckets simply absent;
* each step's window is the columns [t - range, t) plus the sample at t (the first sample of
  the bucket starting at t when its time is t), exactly as rollup_windows.py explains:
  count, first and last sample, counter resets, sum, min, max;
* the function with Prometheus' formula (the float64 operations of functions.extrapolated,
  in the same order), then the aggregation per group;
* every group's values formatted by one `orjson.dumps` of all of them (value_texts), each
  group's points written by one join (_interleaved).

Windows with missing buckets (gaps, series starting or stopping) are handled by the grid
itself. Buckets without edges (rolled up before the edges existed), unaligned windows and
windows too wide for a gathered array return None: fastpath.py then runs the SQL statements.
"""

from __future__ import annotations

import functools
import itertools
import json

import numpy as np
import orjson

from collector_server.monitoring.query import LEVEL_SECONDS, SeriesInfo
from collector_server.prometheus_api.formatting import number, seconds
from collector_server.prometheus_api.promql import rollup_blocks, rollup_windows, storage
from collector_server.prometheus_api.promql.values import Steps

# Above this many series x steps x buckets per window (the additions of a window sum) the SQL
# path answers.
MAX_CELLS = 50_000_000
# Above this many grid cells (series x every bucket of the range: each grid array holds one
# value per cell) or this many bytes of records (one bytea, which Postgres caps at 1 GB) the
# SQL path answers too.
MAX_GRID_CELLS = 4_000_000
MAX_RECORD_BYTES = 256 * 1024 * 1024
PG_EPOCH_MS = 946_684_800_000  # 2000-01-01, the origin of Postgres' binary timestamps
NO_EDGES = np.iinfo(np.int64).min  # '-infinity': a bucket without edges

COUNTER_FUNCTIONS = {"rate", "increase", "delta"}
# Fields read for each function family: (name, SQL expression, binary type).
_COMMON = rollup_blocks.RECORD_FIELDS[:7]  # sid key cnt ft fv lt lv
_RESETS = rollup_blocks.RECORD_FIELDS[7:9]  # rs frs
_STATS = rollup_blocks.RECORD_FIELDS[9:]  # s lo hi


def _columns(function: str) -> list[tuple[str, str, str]]:
    return _COMMON + (_RESETS if function in COUNTER_FUNCTIONS else _STATS)


def _records_sql(columns: list[tuple[str, str, str]]) -> str:
    """One bytea of fixed-width big-endian records, a bucket each (sent in binary, no hex).

    No text, no row-by-row transfer, no Python object per bucket; one aggregate of whole
    records measured faster than one aggregate per column (docs/performance.md).
    """
    return f"string_agg({rollup_blocks.record_sql(columns)}, ''::bytea)"


def _blocks(level: str, params: dict[str, object]) -> bytes | None:
    """The records of the packed blocks (rollup_blocks.py) of the sealed part of the buckets
    `params` select (None: no block state, or nothing sealed in the range).

    The blocks cover the buckets from the first block at or before %(start)s up to the end of
    the packed range (or the last whole span of the rolled-up part); `params`' start moves past
    them, so the bucket rows read only the rest. None when the packed range does not reach
    back to the first block (a backfill under way). Records outside the range are dropped with
    the grid's columns.
    """
    packed = rollup_blocks.packed_range(level)
    if packed is None:
        return None
    since, until = packed
    low = rollup_blocks.floor_span(params["start"], level)
    # Never past the rolled-up part: the raw tail after it is aggregated by the other statement.
    high = min(until, rollup_blocks.floor_span(params["rollup_to"], level))
    if low < since or high <= low:
        return None
    records = storage.copy_bytea(
        f"SELECT records FROM {rollup_blocks.BLOCK_TABLES[level]} "
        "WHERE series_id = ANY(%(ids)s) AND start >= %(low)s AND start < %(high)s",
        {"ids": params["ids"], "low": low, "high": high},
        rollup_windows.QUERY_SETTINGS,
    )
    params["start"] = max(params["start"], high)
    return records


def _parse(buffer: bytes | bytearray, columns: list[tuple[str, str, str]]) -> np.ndarray:
    """The records as one native (records, columns) int64 array: timestamps as sent
    (microseconds since 2000, _grids converts them), float8 columns as their bits.

    One contiguous byte swap of the whole buffer (an `astype` per column of a structured array
    measured ten times slower), in place when the buffer is writable (the blocks' bytearray:
    no second 13 MB array to allocate and fault in).
    """
    width = len(columns)
    count = len(buffer) // (8 * width)
    records = np.frombuffer(buffer, ">i8", count=count * width).reshape(count, width)
    if isinstance(buffer, bytearray):
        return records.byteswap(inplace=True).view(np.int64)
    return records.astype(np.int64)


def _rounded_ms(micros: np.ndarray) -> np.ndarray:
    """Microseconds to the nearest millisecond, halves away from zero: as the SQL paths'
    `(extract(epoch FROM ts) * 1000)::bigint` (a numeric rounded to bigint)."""
    if not micros.size or micros.min() >= 0:  # every time after 1970: one floor division
        return (micros + 500) // 1000
    return np.where(micros >= 0, (micros + 500) // 1000, -((500 - micros) // 1000))


# Grid cells no bucket fills: 0 (0.0), except these columns' (min and max over no bucket).
_FILLS = {"lo": np.inf, "hi": -np.inf}


def _grids(
    parts: list[np.ndarray],
    columns: list[tuple[str, str, str]],
    series: list[SeriesInfo],
    origin: int,
    width: int,
    ncols: int,
    wanted: set[str] | None = None,
) -> dict[str, np.ndarray] | None:
    """Each column but sid and key as a (series, ncols) grid, rows in `series`' order, the
    timestamps as epoch milliseconds (_rounded_ms; '-infinity' kept as NO_EDGES), or None
    when a bucket has no edges (ft '-infinity', in any record). `parts`: _parse's arrays (the
    blocks' records and the bucket rows'); `wanted`: only these columns' grids (the blocks'
    records hold every field, a function reads some).

    One scatter of every column at once into a (columns, cells) array: each grid is a
    contiguous row of it (faster than a scatter per column, and than sorting the records:
    Postgres sends them in its scan order, not by series and time). Records outside the grid's
    columns land in one extra cell, dropped. Timestamps are converted on the grids
    (contiguous) after the scatter: their empty cells hold the microseconds of the epoch,
    which convert to 0 (the empty cell of the other columns).
    """
    names = [name for name, _, _ in columns]
    ids = np.array(sorted(s.id for s in series), dtype=np.int64)
    order = {sid: i for i, sid in enumerate(s.id for s in series)}
    position = np.array([order[sid] for sid in ids.tolist()], dtype=np.int64)
    table = None
    if len(ids) and ids[-1] - ids[0] < 4 * len(ids) + 4096:  # a table of the ids' range: one take
        table = np.zeros(ids[-1] - ids[0] + 1, dtype=np.int64)
        table[ids - ids[0]] = position
    kept = [
        i for i, name in enumerate(names) if name not in ("sid", "key") and (wanted is None or name in wanted)
    ]
    cells = len(series) * ncols
    shift = PG_EPOCH_MS * 1000
    out = np.zeros((len(kept), cells + 1), dtype=np.int64)
    for k, i in enumerate(kept):
        if names[i] in _FILLS:
            out[k].view(np.float64)[:] = _FILLS[names[i]]
        elif columns[i][2] == "ts":
            out[k] = -shift
    for records in parts:
        if not len(records):
            continue
        sid = records[:, names.index("sid")]
        row = (
            table.take(sid - ids[0], mode="clip")
            if table is not None
            else position[np.searchsorted(ids, sid)]
        )
        key = records[:, names.index("key")]
        if origin > 0:
            # (_rounded_ms(key + shift) - origin) // width in one floor division (floor(floor(a / b)
            # / c) = floor(a / bc)); a key before 1970, where rounding differs, is before origin anyway.
            col = (key + (shift + 500 - origin * 1000)) // (width * 1000)
        else:
            col = (_rounded_ms(key + shift) - origin) // width
        flat = row * ncols + col
        outside = (col < 0) | (col >= ncols)
        first_times = records[:, names.index("ft")]
        if outside.any():
            flat[outside] = cells
            first_times = first_times[~outside]  # (a block's buckets beyond the range do not count)
        if len(first_times) and first_times.min() == NO_EDGES:  # the smallest int64
            return None  # buckets without edges in the range (module docstring)
        contiguous = kept == list(range(kept[0], kept[-1] + 1))
        out[:, flat] = (records[:, kept[0] : kept[-1] + 1] if contiguous else records[:, kept]).T
    grids = {}
    for k, i in enumerate(kept):
        grid = out[k, :cells].reshape(len(series), ncols)
        if columns[i][2] == "ts":
            edgeless = grid == NO_EDGES
            grid[:] = _rounded_ms(grid + shift)
            if edgeless.any():
                grid[edgeless] = NO_EDGES
        grids[names[i]] = grid.view(np.float64) if columns[i][2] == "f8" else grid
    return grids


def _window_sum(
    grid: np.ndarray, first: int, stride: int, count: int, j: int, reduce: np.ufunc
) -> np.ndarray:
    """`reduce` over each step's window columns (first + k * stride + i, i < j): (series, steps),
    one column offset at a time, in the window's order (the float additions of the SQL path).

    (A gather of every window at once would hold series x steps x width values.)
    """
    out = grid[:, _every(first, stride, count)].copy()
    for i in range(1, j):
        reduce(out, grid[:, _every(first + i, stride, count)], out=out)
    return out


def _every(first: int, stride: int, count: int) -> slice:
    """The columns first + k * stride of the steps k < count (a view, no gather)."""
    return slice(first, first + (count - 1) * stride + 1, stride)


def _picked(grid: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """grid[s, cols[s, k]] given flat = cols + s * ncols (one take on the flat grid)."""
    return grid.reshape(-1).take(flat)


def window_values(
    series: list[SeriesInfo], steps: Steps, range_ms: int, offset_ms: int, level: str, function: str
) -> tuple[np.ndarray, np.ndarray] | None:
    """(values, present), each (series, steps): `function` over each step's window, or None."""
    if not rollup_windows.aligned(steps, range_ms, offset_ms, level):
        return None
    width = LEVEL_SECONDS[level] * 1000
    count = steps.count
    j = range_ms // width
    if j < 1 or len(series) * count * j > MAX_CELLS:
        return None
    t0 = steps.start_ms - offset_ms
    hi = steps.end_ms - offset_ms
    origin = t0 - range_ms
    columns = _columns(function)
    ncols = (hi - origin) // width + 1
    sparse = steps.step_ms > range_ms + width  # only the buckets some window reaches are read
    buckets = min(ncols, count * (j + 1)) if sparse else ncols
    if len(series) * ncols > MAX_GRID_CELLS:
        return None
    params = rollup_windows.bucket_params(level, series, origin, hi)
    if (
        not sparse
        and len(series) * (buckets + 2 * rollup_blocks.BUCKETS_PER_BLOCK[level]) * 96 <= MAX_RECORD_BYTES
    ):
        blocks = _blocks(level, params)
    else:
        blocks = None
    if blocks is not None:  # every field, as the blocks hold them
        columns = rollup_blocks.RECORD_FIELDS
    elif len(series) * buckets * 8 * len(columns) > MAX_RECORD_BYTES:
        return None
    reach = ""
    if sparse:  # buckets no window (nor sample at t) reaches are not read
        reach = (
            "WHERE mod((date_part('epoch', key) * 1000)::bigint - %(origin)s::bigint, %(step)s::bigint)"
            " <= %(range)s::bigint"
        )
        params.update(origin=origin, step=steps.step_ms, range=range_ms)
    # Rolled-up and raw buckets aggregated apart: no Append of projected rows in between.
    sql = " || ".join(
        f"coalesce((SELECT {_records_sql(columns)} FROM ({source(level, epoch_ms=False)}) b {reach}), ''::bytea)"
        for source in (rollup_windows.rolled_up_rows_sql, rollup_windows.raw_bucket_rows_sql)
    )
    rest = (storage.fetch_bytes(f"SELECT {sql}", params, rollup_windows.QUERY_SETTINGS) or [b""])[0]
    parts = [_parse(buffer, columns) for buffer in (blocks, rest) if buffer]  # (not joined: a copy)
    wanted = {name for name, _, _ in _columns(function)}
    grid = _grids(parts, columns, series, origin, width, ncols, wanted)
    if grid is None:
        return None  # buckets without edges: the SQL path's approximation
    return _windows(grid, steps, range_ms, offset_ms, width, j, ncols, function)


def _windows(
    grid: dict[str, np.ndarray],
    steps: Steps,
    range_ms: int,
    offset_ms: int,
    width: int,
    j: int,
    ncols: int,
    function: str,
) -> tuple[np.ndarray, np.ndarray] | None:
    """(values, present) from the grids: each step's window is the columns [end - j, end) and
    the sample at t the first of column `end` (the bucket starting at t) when its time is t.

    Every column set is a strided slice (a view): step k's bucket at t is column j + k * stride.
    Where every window's first (last) column holds a bucket, as in a fleet without gaps, that
    column is the window's first (last) bucket; otherwise the first bucket at or after it (at or
    before it) is found for every cell by an accumulate, as before.
    """
    count = steps.count
    stride = steps.step_ms // width if count > 1 else 1
    t0 = steps.start_ms - offset_ms
    times = t0 + np.arange(count, dtype=np.int64) * steps.step_ms
    cnt, ft, fv, lt, lv = grid["cnt"], grid["ft"], grid["fv"], grid["lt"], grid["lv"]
    rows = cnt.shape[0]
    at = _every(j, stride, count)  # the bucket at t
    start = _every(0, stride, count)  # the window's first column
    end = _every(j - 1, stride, count)  # its last
    present = cnt > 0
    cumulative = np.zeros((rows, ncols + 1), dtype=np.int64)
    np.cumsum(cnt, axis=1, out=cumulative[:, 1:])
    in_window = cumulative[:, at] - cumulative[:, start]
    at_t = present[:, at] & (ft[:, at] == times[None, :])
    at_v = fv[:, at]
    n = in_window + at_t
    base = (np.arange(rows, dtype=np.int64) * ncols)[:, None]
    first: np.ndarray | None = None  # flat grid indices of each window's first bucket (None: column `start`)
    if present[:, start].all():
        has_first = np.ones((rows, count), dtype=bool)
        first_t, first_v = ft[:, start], fv[:, start]
    else:
        index = np.arange(ncols)
        following = np.minimum.accumulate(np.where(present, index, ncols)[:, ::-1], axis=1)[:, ::-1]
        column = following[:, start]
        has_first = column < (j + np.arange(count, dtype=np.int64) * stride)[None, :]
        first = np.minimum(column, ncols - 1) + base
        first_t = np.where(has_first, _picked(ft, first), times[None, :])
        first_v = np.where(has_first, _picked(fv, first), at_v)
    if present[:, end].all():
        before_t, before_v = lt[:, end], lv[:, end]
    else:
        preceding = np.maximum.accumulate(np.where(present, np.arange(ncols), -1), axis=1)
        last = np.maximum(preceding[:, end], 0) + base
        before_t, before_v = _picked(lt, last), _picked(lv, last)
    last_t = np.where(at_t, times[None, :], before_t)
    last_v = np.where(at_t, at_v, before_v)

    with np.errstate(all="ignore"):
        if function in COUNTER_FUNCTIONS:
            resets = None
            if function != "delta":
                frs = grid["frs"]
                first_resets = frs[:, start] if first is None else _picked(frs, first)
                resets = _window_sum(grid["rs"], 0, stride, count, j, np.add) - first_resets
                resets = resets + np.where(at_t & has_first, frs[:, at], 0.0)
            values = _extrapolated(
                resets, n, times, range_ms, first_t, first_v, last_t, last_v, function
            )  # fmt: skip
            return values, n >= 2
        if function in ("sum_over_time", "avg_over_time"):
            total = _window_sum(grid["s"], 0, stride, count, j, np.add) + np.where(at_t, at_v, 0.0)
            values = total if function == "sum_over_time" else total / n
        elif function in ("min_over_time", "max_over_time"):
            smallest = function == "min_over_time"
            name, empty, pick = ("lo", np.inf, np.fmin) if smallest else ("hi", -np.inf, np.fmax)
            inner = _window_sum(grid[name], 0, stride, count, j, pick)
            values = pick(inner, np.where(at_t, at_v, empty))
        elif function == "count_over_time":
            values = n.astype(np.float64)
        elif function == "last_over_time":
            values = last_v
        elif function == "present_over_time":
            values = np.ones(n.shape)
        else:
            return None
    return values, n >= 1


def _extrapolated(
    resets, n, times, range_ms, first_t, first_v, last_t, last_v, function,
) -> np.ndarray:  # fmt: skip
    """Prometheus' extrapolatedRate (functions.extrapolated) on whole arrays.

    The float64 operations of the formula in its order; written in place where an operand is
    a temporary (fewer arrays allocated; `a * b` and `a + b` are the same numbers as `b * a`
    and `b + a`).
    """
    result = last_v - first_v
    if function != "delta":
        result += resets
    scratch = np.empty(result.shape, dtype=np.int64)
    to_start = np.subtract(first_t, times[None, :] - range_ms, out=scratch) / 1000
    to_end = np.subtract(times[None, :], last_t, out=scratch) / 1000
    sampled = np.subtract(last_t, first_t, out=scratch) / 1000
    average = sampled / np.subtract(n, 1, out=scratch)
    if function != "delta":
        capped = np.divide(first_v, result)
        capped *= sampled
        np.minimum(to_start, capped, out=capped)
        np.copyto(to_start, capped, where=(result > 0) & (first_v >= 0))
    threshold = average * 1.1
    half = np.divide(average, 2, out=average)
    interval = np.where(to_start < threshold, to_start, half)
    interval += sampled
    interval += np.where(to_end < threshold, to_end, half)
    interval /= sampled
    result *= interval
    if function == "rate":
        result /= range_ms / 1000
    return result


def aggregate(
    values: np.ndarray, present: np.ndarray, gids: np.ndarray, groups: int, op: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """(values, present) per group: `op` over the member series' present values."""
    if op is None:
        out = np.zeros((groups, values.shape[1]))
        have = np.zeros((groups, values.shape[1]), dtype=bool)
        out[gids] = values
        have[gids] = present
        return out, have
    single = len(np.unique(gids)) == len(gids)  # a series per group (`sum by (host)`, a host each)

    def accumulate(ufunc: np.ufunc, out: np.ndarray, member_values: np.ndarray) -> None:
        """ufunc.at(out, gids, member_values); with one member per group the same operation
        on whole rows (ufunc.at measured 5x slower)."""
        if single:
            out[gids] = ufunc(out[gids], member_values)
        else:
            ufunc.at(out, gids, member_values)

    members = np.zeros((groups, values.shape[1]), dtype=np.int64)
    accumulate(np.add, members, present.astype(np.int64))
    have = members > 0
    with np.errstate(all="ignore"):
        if op in ("sum", "avg"):
            total = np.zeros((groups, values.shape[1]))
            accumulate(np.add, total, np.where(present, values, 0.0))
            out = total if op == "sum" else total / members
        elif op == "count":
            out = members.astype(np.float64)
        else:  # min, max: NaN only when every member is NaN, as in Prometheus
            out = np.full((groups, values.shape[1]), np.nan)
            accumulate(np.fmin if op == "min" else np.fmax, out, np.where(present, values, np.nan))
    return out, have


def timestamps(steps: Steps) -> list[str]:
    """Each step's `[<time>,"` (the start of a point's JSON)."""
    return list(_prefixes(steps)[0])


@functools.lru_cache(maxsize=16)
def _prefixes(steps: Steps) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(timestamps(steps), the same after the first led by the previous point's end `"],`).

    Kept per Steps: a dashboard asks the same steps for every panel and every block.
    """
    prefixes = tuple(
        f"[{json.dumps(seconds(t))}," + '"' for t in range(steps.start_ms, steps.end_ms + 1, steps.step_ms)
    )
    return prefixes, prefixes[:1] + tuple('"],' + p for p in prefixes[1:])


def value_texts(values: np.ndarray) -> list[str]:
    """Each value as formatting.number writes it (Go's 'f', -1), from one orjson.dumps of all.

    orjson writes the shortest round-trip digits, as repr does (and so Go's 'f' -1 once a
    whole number's ".0" is dropped; checked on millions of values in test_vectorised_format.py
    and while writing it); a value it writes with an exponent, or as null (NaN, infinities),
    is formatted by formatting.number.
    """
    if not values.size:
        return []
    text = orjson.dumps(np.ascontiguousarray(values, dtype=np.float64), option=orjson.OPT_SERIALIZE_NUMPY)
    text = text.decode()[1:-1].replace(".0,", ",")  # (str.replace: bytes.replace measured 9x slower)
    if text.endswith(".0"):
        text = text[:-2]
    texts = text.split(",")
    if "e" in text or "n" in text:  # exponents, null: those values' tokens again, one by one
        chars = np.frombuffer(text.encode(), dtype=np.uint8)
        token = np.cumsum(chars == ord(","))  # each character's token
        for i in np.unique(token[(chars == ord("e")) | (chars == ord("n"))]).tolist():
            texts[i] = number(float(values[i]))
    return texts


def _interleaved(parts: list, texts: list[str]) -> str:
    """The points' JSON: `parts` holds each point's lead (`[<time>,"`, then `"],[<time>,"`)
    at its even places; the texts fill the odd ones, one join writes them."""
    parts[1::2] = texts
    return "".join(parts) + '"]'


def _leads(leads: tuple[str, ...], present: np.ndarray) -> list:
    """The parts list of _interleaved for the steps where `present`."""
    chosen = list(itertools.compress(leads, present.tolist()))
    if chosen and chosen[0][0] != "[":  # the first point of a partial series has nothing before it
        chosen[0] = chosen[0][3:]
    parts: list = [None] * (2 * len(chosen))
    parts[0::2] = chosen
    return parts


def points_json(
    values: np.ndarray, present: np.ndarray, prefixes: np.ndarray | tuple[str, ...]
) -> str | None:
    """One series' points as JSON text, without the array's brackets (None: no step has a value)."""
    if not present.any():
        return None
    leads = tuple(prefixes[:1]) + tuple('"],' + p for p in prefixes[1:])
    return _interleaved(_leads(leads, present), value_texts(values[present]))


def fragments(values: np.ndarray, present: np.ndarray, steps: Steps) -> dict[int, str]:
    """Each group's points over `steps` (the arrays' columns) as JSON text without brackets.

    The values of all groups formatted at once (value_texts), then each group's points
    written by one join of its steps' leads and its value texts (_interleaved: a `%`
    template measured 2.6x slower, a join of `map(str.__add__, ...)` 6x).
    """
    prefixes, leads = _prefixes(steps)
    texts = value_texts(values[present])
    full: list | None = None  # the parts of a group with a value at every step, reused
    out = {}
    at = 0
    for gid, count in enumerate(present.sum(axis=1).tolist()):
        if not count:
            continue
        chunk = texts[at : at + count]
        at += count
        if count == len(prefixes):
            if full is None:
                full = [None] * (2 * count)
                full[0::2] = leads
            out[gid] = _interleaved(full, chunk)
        else:
            out[gid] = _interleaved(_leads(leads, present[gid]), chunk)
    return out


def group_values(
    series: list[SeriesInfo],
    gids: list[int],
    groups: int,
    steps: Steps,
    range_ms: int,
    offset_ms: int,
    level: str,
    function: str,
    op: str | None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """(values, present), each (groups, steps): `op` of `function` per group, or None (SQL path)."""
    computed = window_values(series, steps, range_ms, offset_ms, level, function)
    if computed is None:
        return None
    return aggregate(*computed, np.array(gids, dtype=np.int64), groups, op)


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
) -> dict[int, str] | None:
    """Each group's `values` JSON array (groups without values left out), or None (SQL path)."""
    computed = group_values(series, gids, groups, steps, range_ms, offset_ms, level, function, op)
    if computed is None:
        return None
    return {gid: f"[{text}]" for gid, text in fragments(*computed, steps).items()}
