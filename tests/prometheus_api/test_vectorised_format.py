"""The numpy path's grids, windows and JSON against straightforward references (no database)."""

from __future__ import annotations

import numpy as np

from collector_server.monitoring.query import SeriesInfo
from collector_server.prometheus_api.formatting import number
from collector_server.prometheus_api.promql import vectorised
from collector_server.prometheus_api.promql.values import Steps

WIDTH = 60_000
ORIGIN = 1_700_000_000_000 // WIDTH * WIDTH


def test_value_texts_match_number_for_every_kind_of_value():
    rng = np.random.default_rng(7)
    special = [0.0, -0.0, 1.0, 0.1, 1e-4, 1e-5, 1.5e-7, 5e-324, 1e15, 1e16, 1.5e16, 1e21, 2.0**53 + 2]
    special += [1.7976931348623157e308, float("nan"), float("inf"), float("-inf"), -3.25, 123456.789]
    bits = rng.integers(0, 2**63, 50_000, dtype=np.uint64).view(np.float64)
    scaled = rng.random(50_000) * 10.0 ** rng.integers(-12, 24, 50_000).astype(float)
    rates = rng.integers(-(10**6), 10**6, 50_000) / 60.0
    for values in (np.array(special), bits, -scaled, rates, np.round(rates), np.array([])):
        assert vectorised.value_texts(values) == [number(v) for v in values.tolist()]


def _reference_points(values: np.ndarray, present: np.ndarray, steps: Steps) -> dict[int, str]:
    prefixes = vectorised.timestamps(steps)
    out = {}
    for gid in range(values.shape[0]):
        points = [
            f'{p}{number(v)}"]'
            for p, v, ok in zip(prefixes, values[gid].tolist(), present[gid], strict=True)
            if ok
        ]
        if points:
            out[gid] = ",".join(points)
    return out


def test_fragments_of_full_partial_and_empty_groups():
    steps = Steps(1_700_000_000_000, 1_700_000_000_000 + 99 * 15_500, 15_500)  # sub-second times
    rng = np.random.default_rng(3)
    values = rng.random((5, steps.count)) * 100
    values[1, 7] = np.nan
    values[2, 3] = 1e-9
    values[2, 4] = np.inf
    present = np.ones(values.shape, dtype=bool)
    present[1, ::3] = False  # partial
    present[3] = False  # no value at all
    present[4, 50:] = False
    fragments = vectorised.fragments(values, present, steps)
    assert fragments == _reference_points(values, present, steps)
    assert 3 not in fragments
    assert vectorised.points_json(values[1], present[1], vectorised.timestamps(steps)) == fragments[1]


def _records(rows: list[tuple], columns) -> np.ndarray:
    """Native records as _parse returns them, from (sid, key_ms, values...) tuples."""
    out = []
    for sid, key, *rest in rows:
        record = [sid, (key - vectorised.PG_EPOCH_MS) * 1000]
        for (_, _, kind), value in zip(columns[2:], rest, strict=True):
            if kind == "ts":
                record.append((value - vectorised.PG_EPOCH_MS) * 1000 + 499)  # rounds down to value
            else:
                record.append(np.float64(value).view(np.int64).item() if kind == "f8" else value)
        out.append(record)
    buffer = np.array(out, dtype=np.int64).astype(">i8").tobytes()
    return vectorised._parse(buffer, columns)


def _reference_grid(rows, columns, series, ncols, name, fill):
    """The former per-column scatter: grid[row, col] = value, `fill` elsewhere."""
    index = [c[0] for c in columns].index(name)
    order = {s.id: i for i, s in enumerate(series)}
    grid = np.full((len(series), ncols), fill, dtype=np.float64)
    for record in rows:
        col = (record[1] - ORIGIN) // WIDTH
        if 0 <= col < ncols:
            grid[order[record[0]], col] = record[index]
    return grid


def _random_rows(rng, sids, ncols, function, gaps=True):
    columns = vectorised._columns(function)
    rows = []
    for sid in sids:
        for col in range(-1, ncols + 1):  # one bucket each side of the grid
            if gaps and rng.random() < 0.2:
                continue
            key = ORIGIN + col * WIDTH
            ft = key + int(rng.integers(0, 3)) * 15_000
            rest = [int(rng.integers(1, 5)), ft, rng.random() * 100, key + 45_000, rng.random() * 100]
            rest += [float(rng.integers(0, 2)), float(rng.integers(0, 2))] if len(columns) == 9 else []
            rest += [rng.random(), rng.random(), rng.random()] if len(columns) == 10 else []
            rows.append((sid, key, *rest))
    rng.shuffle(rows)  # Postgres' scan order, not (series, key)
    return columns, rows


def test_grids_equal_the_per_column_scatter():
    rng = np.random.default_rng(11)
    ncols = 40
    for sids, function in (
        ([5, 3, 9], "rate"),
        ([10**9, 7, 4 * 10**9], "min_over_time"),
    ):  # table / searchsorted
        series = [SeriesInfo(id=sid, kind="counter", labels={}) for sid in sids]
        columns, rows = _random_rows(rng, sids, ncols, function)
        records = _records(rows, columns)
        grids = vectorised._grids([records], columns, series, ORIGIN, WIDTH, ncols)
        # Two parts (blocks, bucket rows) and a subset of the columns: the same grids.
        split = vectorised._grids(
            [records[:50], records[50:]], columns, series, ORIGIN, WIDTH, ncols, {"cnt", "lt"}
        )
        assert set(split) == {"cnt", "lt"}
        assert all(np.array_equal(split[name], grids[name]) for name in split)
        for name, _, kind in columns[2:]:
            fill = vectorised._FILLS.get(name, 0.0)
            assert np.array_equal(grids[name], _reference_grid(rows, columns, series, ncols, name, fill)), (
                name
            )
            assert grids[name].dtype == (np.float64 if kind == "f8" else np.int64)


def test_grids_decline_buckets_without_edges():
    columns, rows = _random_rows(np.random.default_rng(1), [1], 10, "rate", gaps=False)
    records = _records(rows, columns)
    series = [SeriesInfo(id=1, kind="counter", labels={})]
    before = records[:, 1] < (ORIGIN - vectorised.PG_EPOCH_MS) * 1000
    outside, inside = int(np.flatnonzero(before)[0]), int(np.flatnonzero(~before)[0])
    # A bucket outside the grid's columns (a packed block reaching before the range) is not read.
    records[outside, 3] = vectorised.NO_EDGES
    assert vectorised._grids([records[:0], records], columns, series, ORIGIN, WIDTH, 10) is not None
    records[inside, 3] = vectorised.NO_EDGES
    assert vectorised._grids([records[:0], records], columns, series, ORIGIN, WIDTH, 10) is None


def test_windows_without_gaps_equal_the_general_path():
    """Windows whose first and last columns all hold buckets take slices; with one empty series
    beside them every row takes the accumulate path, which must give the same numbers."""
    rng = np.random.default_rng(5)
    steps = Steps(ORIGIN + 5 * WIDTH, ORIGIN + 5 * WIDTH + 30 * 2 * WIDTH, 2 * WIDTH)
    ncols = 5 + 30 * 2 + 1
    for function in ("rate", "increase", "delta", "sum_over_time", "max_over_time", "last_over_time"):
        columns, rows = _random_rows(rng, [1, 2], ncols, function, gaps=False)
        series = [SeriesInfo(id=sid, kind="counter", labels={}) for sid in (1, 2, 3)]  # 3: no bucket
        grids = vectorised._grids([_records(rows, columns)], columns, series, ORIGIN, WIDTH, ncols)
        dense = {name: grid[:2] for name, grid in grids.items()}
        assert dense["cnt"][:, :ncols].min() > 0
        fast = vectorised._windows(dense, steps, 5 * WIDTH, 0, WIDTH, 5, ncols, function)
        general = vectorised._windows(grids, steps, 5 * WIDTH, 0, WIDTH, 5, ncols, function)
        assert np.array_equal(fast[1], general[1][:2]), function
        assert np.array_equal(fast[0][fast[1]], general[0][:2][fast[1]]), function
        assert not general[1][2].any()


def test_aggregate_with_one_member_per_group_equals_ufunc_at():
    """The row-wise path (a series per group) against ufunc.at, -0.0 and NaN members included."""
    rng = np.random.default_rng(9)
    values = rng.normal(size=(6, 50))
    values[0, :5] = -0.0
    values[1, :5] = np.nan
    present = rng.random(values.shape) > 0.3
    gids = np.array([3, 0, 5, 1, 4, 2])
    for op in ("sum", "avg", "count", "min", "max"):
        out, have = vectorised.aggregate(values, present, gids, 6, op)
        members = np.zeros((6, 50), dtype=np.int64)
        np.add.at(members, gids, present.astype(np.int64))
        expected = np.zeros((6, 50)) if op in ("sum", "avg", "count") else np.full((6, 50), np.nan)
        if op == "count":
            expected = members.astype(np.float64)
        else:
            ufunc = {"min": np.fmin, "max": np.fmax}.get(op, np.add)
            ufunc.at(expected, gids, np.where(present, values, 0.0 if op in ("sum", "avg") else np.nan))
            if op == "avg":
                with np.errstate(all="ignore"):
                    expected = expected / members
        assert np.array_equal(have, members > 0)
        texts = vectorised.value_texts(out[have])
        assert texts == vectorised.value_texts(expected[have]), op
        assert "-0" not in texts or op in ("min", "max")
    grouped = vectorised.aggregate(values, present, np.array([0, 0, 1, 1, 1, 2]), 3, "sum")[0]
    expected = np.zeros((3, 50))
    np.add.at(expected, np.array([0, 0, 1, 1, 1, 2]), np.where(present, values, 0.0))
    assert np.array_equal(grouped, expected, equal_nan=True)
