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
* each group's `values` array written from one `repr` of the values list.

Windows with missing buckets (gaps, series starting or stopping) are handled by the grid
itself. Buckets without edges (rolled up before the edges existed), unaligned windows and
windows too wide for a gathered array return None: fastpath.py then runs the SQL statements.
"""

from __future__ import annotations

import json

import numpy as np

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

    The blocks cover the buckets from the first block at or before %(start)s up to the seal
    point (or the end of the rolled-up part); `params`' start moves past them, so the bucket
    rows read only the rest. Records outside the range are dropped with the grid's columns.
    """
    sealed = rollup_blocks.sealed_until(level)
    if sealed is None:
        return None
    low = rollup_blocks.floor_span(params["start"], level)
    high = min(sealed, rollup_blocks.ceil_span(params["rollup_to"], level))
    if high <= low:
        return None
    records = storage.copy_bytea(
        f"SELECT records FROM {rollup_blocks.BLOCK_TABLES[level]} "
        "WHERE series_id = ANY(%(ids)s) AND start >= %(low)s AND start < %(high)s",
        {"ids": params["ids"], "low": low, "high": high},
        rollup_windows.QUERY_SETTINGS,
    )
    params["start"] = max(params["start"], high)
    return records


def _parse(buffer: bytes, columns: list[tuple[str, str, str]]) -> dict[str, np.ndarray]:
    """The records into native arrays: timestamps (microseconds since 2000) as epoch milliseconds."""
    dtype = np.dtype([(name, ">f8" if kind == "f8" else ">i8") for name, _, kind in columns])
    rows = np.frombuffer(buffer, dtype, count=len(buffer) // dtype.itemsize)
    out = {}
    for name, _, kind in columns:
        values = rows[name].astype(np.float64 if kind == "f8" else np.int64)
        if kind == "ts":
            edgeless = values == NO_EDGES
            values = _rounded_ms(values + PG_EPOCH_MS * 1000)
            values[edgeless] = NO_EDGES
        out[name] = values
    return out


def _rounded_ms(micros: np.ndarray) -> np.ndarray:
    """Microseconds to the nearest millisecond, halves away from zero: as the SQL paths'
    `(extract(epoch FROM ts) * 1000)::bigint` (a numeric rounded to bigint)."""
    return np.where(micros >= 0, (micros + 500) // 1000, -((500 - micros) // 1000))


def _over_window(grid: np.ndarray, window: np.ndarray, reduce: np.ufunc) -> np.ndarray:
    """`reduce` over each step's window columns: (series, steps), one column offset at a time.

    (A gather of every window at once would hold series x steps x width values.)
    """
    out = grid[:, window[:, 0]].copy()
    for i in range(1, window.shape[1]):
        reduce(out, grid[:, window[:, i]], out=out)
    return out


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
    rows = _parse(blocks + rest if blocks else rest, columns)
    if (rows["ft"] == NO_EDGES).any():
        return None  # buckets without edges: the SQL path's approximation
    ids = np.array(sorted(s.id for s in series), dtype=np.int64)
    order = {sid: i for i, sid in enumerate(s.id for s in series)}
    # Grid rows follow `series`' order.
    position = np.array([order[sid] for sid in ids.tolist()], dtype=np.int64)
    row = position[np.searchsorted(ids, rows["sid"])]
    col = (rows["key"] - origin) // width
    inside = (col >= 0) & (col < ncols)
    row, col = row[inside], col[inside]
    shape = (len(series), ncols)

    def grid(name: str, fill: float = 0.0) -> np.ndarray:
        out = np.full(shape, fill, dtype=rows[name].dtype)
        out[row, col] = rows[name][inside]
        return out

    cnt = grid("cnt", 0)
    ft, fv, lt, lv = grid("ft", 0), grid("fv"), grid("lt", 0), grid("lv")
    present = cnt > 0
    ends = j + np.arange(count, dtype=np.int64) * (steps.step_ms // width)  # column of the bucket at t
    times = t0 + np.arange(count, dtype=np.int64) * steps.step_ms
    window = ends[:, None] - j + np.arange(j)[None, :]  # (steps, j) columns of each window
    every = np.arange(len(series))[:, None]

    cumulative = np.concatenate([np.zeros((shape[0], 1), np.int64), np.cumsum(cnt, axis=1)], axis=1)
    in_window = cumulative[:, ends] - cumulative[:, ends - j]
    at_t = present[:, ends] & (ft[:, ends] == times[None, :])
    at_v = fv[:, ends]
    n = in_window + at_t
    index = np.arange(ncols)
    # The first bucket at or after a column, the last at or before it (ncols / -1: none).
    following = np.minimum.accumulate(np.where(present, index, ncols)[:, ::-1], axis=1)[:, ::-1]
    preceding = np.maximum.accumulate(np.where(present, index, -1), axis=1)
    first = following[:, ends - j]
    has_first = first < ends[None, :]
    first = np.minimum(first, ncols - 1)
    last = np.maximum(preceding[:, ends - 1], 0)
    first_t = np.where(has_first, ft[every, first], times[None, :])
    first_v = np.where(has_first, fv[every, first], at_v)
    last_t = np.where(at_t, times[None, :], lt[every, last])
    last_v = np.where(at_t, at_v, lv[every, last])

    with np.errstate(all="ignore"):
        if function in COUNTER_FUNCTIONS:
            values = _extrapolated(
                grid, window, every, first, has_first, at_t, ends, n, times, range_ms,
                first_t, first_v, last_t, last_v, function,
            )  # fmt: skip
            return values, n >= 2
        if function in ("sum_over_time", "avg_over_time"):
            total = _over_window(grid("s"), window, np.add) + np.where(at_t, at_v, 0.0)
            values = total if function == "sum_over_time" else total / n
        elif function in ("min_over_time", "max_over_time"):
            smallest = function == "min_over_time"
            name, empty, pick = ("lo", np.inf, np.fmin) if smallest else ("hi", -np.inf, np.fmax)
            inner = _over_window(grid(name, empty), window, pick)
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
    grid, window, every, first, has_first, at_t, ends, n, times, range_ms,
    first_t, first_v, last_t, last_v, function,
) -> np.ndarray:  # fmt: skip
    """Prometheus' extrapolatedRate (functions.extrapolated) on whole arrays."""
    result = last_v - first_v
    if function != "delta":
        first_resets = grid("frs")
        resets = _over_window(grid("rs"), window, np.add) - first_resets[every, first]
        resets = resets + np.where(at_t & has_first, first_resets[:, ends], 0.0)
        result = result + resets
    range_start = times[None, :] - range_ms
    to_start = (first_t - range_start) / 1000
    to_end = (times[None, :] - last_t) / 1000
    sampled = (last_t - first_t) / 1000
    average = sampled / (n - 1)
    if function != "delta":
        capped = np.minimum(to_start, sampled * (first_v / result))
        to_start = np.where((result > 0) & (first_v >= 0), capped, to_start)
    threshold = average * 1.1
    interval = sampled + np.where(to_start < threshold, to_start, average / 2)
    interval = interval + np.where(to_end < threshold, to_end, average / 2)
    result = result * (interval / sampled)
    return result / (range_ms / 1000) if function == "rate" else result


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
    members = np.zeros((groups, values.shape[1]), dtype=np.int64)
    np.add.at(members, gids, present.astype(np.int64))
    have = members > 0
    with np.errstate(all="ignore"):
        if op in ("sum", "avg"):
            total = np.zeros((groups, values.shape[1]))
            np.add.at(total, gids, np.where(present, values, 0.0))
            out = total if op == "sum" else total / members
        elif op == "count":
            out = members.astype(np.float64)
        else:  # min, max: NaN only when every member is NaN, as in Prometheus
            out = np.full((groups, values.shape[1]), np.nan)
            (np.fmin if op == "min" else np.fmax).at(out, gids, np.where(present, values, np.nan))
    return out, have


def timestamps(steps: Steps) -> list[str]:
    """Each step's `[<time>,"` (the start of a point's JSON)."""
    return [
        f"[{json.dumps(seconds(t))}," + '"' for t in range(steps.start_ms, steps.end_ms + 1, steps.step_ms)
    ]


def points_json(values: np.ndarray, present: np.ndarray, prefixes: np.ndarray) -> str | None:
    """One series' points as JSON text, without the array's brackets (None: no step has a value).

    The values are formatted by one repr of the whole list (Python's shortest round-trip
    digits, Go's 'f' -1 once the ".0" of whole numbers is dropped); a series holding an
    exponent, NaN or an infinity is formatted value by value with formatting.number.
    """
    if not present.any():
        return None
    chosen = values[present].tolist()
    text = repr(chosen)[1:-1]
    if "e" in text or "n" in text:
        texts = [number(v) for v in chosen]
    else:
        text = text.replace(".0, ", ", ")
        texts = (text[:-2] if text.endswith(".0") else text).split(", ")
    return '"],'.join(map(str.__add__, prefixes[present].tolist(), texts)) + '"]'


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


def fragments(values: np.ndarray, present: np.ndarray, steps: Steps) -> dict[int, str]:
    """Each group's points over `steps` (the arrays' columns) as JSON text without brackets."""
    prefixes = np.array(timestamps(steps), dtype=object)
    out = {}
    for gid in range(values.shape[0]):
        text = points_json(values[gid], present[gid], prefixes)
        if text is not None:
            out[gid] = text
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
) -> dict[int, str] | None:
    """Each group's `values` JSON array (groups without values left out), or None (SQL path)."""
    computed = group_values(series, gids, groups, steps, range_ms, offset_ms, level, function, op)
    if computed is None:
        return None
    return {gid: f"[{text}]" for gid, text in fragments(*computed, steps).items()}
