"""Per-model figures over a range, read from the inference series (docs/inference.md).

Counters are read as increases (reset-aware) through the monitoring query engine's uniform rows,
so a range longer than a day reads 1 h rollups, one longer than an hour 1 min rollups, the rest
raw samples (the part after a rollup level's ``done_until`` is read raw). Quantiles are
Prometheus' ``histogram_quantile`` over the summed bucket increases. Cost is the reported cost
(``llm_cost_usd_total``) plus the tokens recorded without a cost priced with the price table in
force at the time (of each raw sample; for rollups, at the start of the 1 min or 1 h bucket).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection

from collector_server.inference.pricing import PriceTable
from collector_server.monitoring import query
from collector_server.monitoring.models import Series
from collector_server.orgs import scope
from shared import inference as c

COUNTERS = (
    c.REQUESTS,
    c.DURATION + "_bucket",
    c.TTFT + "_bucket",
    c.INPUT_TOKENS,
    c.OUTPUT_TOKENS,
    c.COST,
    c.UNPRICED_INPUT_TOKENS,
    c.UNPRICED_OUTPUT_TOKENS,
)
SERVER_GAUGES = (c.RUNNING, c.WAITING, c.KV_CACHE)
TPOT_BUCKET = c.TPOT + "_bucket"
GAUGE_LOOKBACK = timedelta(minutes=5)
GPU_METRIC = "gpu_utilization_percent"
MAX_SERIES = 50_000  # series one select reads at most; beyond: the answer says "truncated"
LOGGER = logging.getLogger(__name__)
_truncated: ContextVar[list[tuple[str, ...]] | None] = ContextVar("inference_truncated", default=None)
_logged_truncation = False
Key = tuple[str, str]  # (model, organization); organization is "" when not grouped by it


@dataclass(frozen=True)
class Found:
    id: int
    name: str
    kind: str
    labels: dict[str, str]

    @property
    def model(self) -> str:
        return self.labels.get("model", "")

    @property
    def organization(self) -> str:
        return self.labels.get("organization", "")


@contextmanager
def noting_truncation() -> Iterator[list[tuple[str, ...]]]:
    """Collect the series names whose select hit MAX_SERIES inside the block (the API says so)."""
    hits: list[tuple[str, ...]] = []
    token = _truncated.set(hits)
    try:
        yield hits
    finally:
        _truncated.reset(token)


def _note_truncation(names: tuple[str, ...]) -> None:
    global _logged_truncation
    hits = _truncated.get()
    if hits is not None:
        hits.append(names)
    if not _logged_truncation:  # once per process: the API answer says it every time
        _logged_truncation = True
        LOGGER.warning(
            "inference figures read only the first %d series of %s: the answer is truncated "
            "(narrow it with model or organization)",
            MAX_SERIES,
            ", ".join(names),
        )


def select(names: tuple[str, ...], model: str | None = None, organization: str | None = None) -> list[Found]:
    """The series of ``names`` in the active scope, narrowed to a model and a customer organisation."""
    clause, org_params = scope.sql_filter("organization_id")
    where = ["name = ANY(%s)", clause]
    params: list[Any] = [list(names), *org_params]
    if model is not None:
        where.append("coalesce(labels ->> 'model', '') = %s")
        params.append(model)
    if organization is not None:
        where.append("coalesce(labels ->> 'organization', '') = %s")
        params.append(organization)
    sql = f"SELECT id, name, kind, labels FROM monitoring_series WHERE {' AND '.join(where)} LIMIT %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, MAX_SERIES + 1])
        rows = cursor.fetchall()
    if len(rows) > MAX_SERIES:
        rows = rows[:MAX_SERIES]
        _note_truncation(names)
    out = []
    for sid, name, kind, labels in rows:
        if isinstance(labels, str | bytes):
            labels = json.loads(labels)
        out.append(Found(sid, name, kind, labels if isinstance(labels, dict) else {}))
    return out


def totals_level(start: datetime, end: datetime) -> tuple[str, int]:
    """The source of a range's totals and the width its price buckets have."""
    span = end - start
    if span > timedelta(days=1):
        return query.choose_level(start, end, 3600), 3600
    if span > timedelta(hours=1):
        level = query.choose_level(start, end, 60)
        return level, query.LEVEL_SECONDS.get(level, 60)
    level = query.choose_level(start, end, 0)
    return level, query.LEVEL_SECONDS.get(level, 0)


def priced_level(start: datetime, end: datetime) -> tuple[str, int]:
    """Daily cost and budgets: 1-minute buckets up to 7 days (a price change counts from its minute),
    1-hour buckets beyond; raw samples (exact) up to an hour."""
    if end - start <= timedelta(hours=1):
        return totals_level(start, end)
    level = query.choose_level(start, end, 60)
    return level, query.LEVEL_SECONDS.get(level, 60)


# After the 1 min tier a counter's previous sample is at most its interval away (agents and the SDK
# send every 10 s by default): read that far back for the first raw sample's increase.
TAIL_LOOKBACK = timedelta(minutes=2)
HOUR_TIER_SQL = """
        SELECT series_id, bucket AS t, increase FROM monitoring_rollup_1h
        WHERE series_id = ANY(%(ids)s) AND bucket >= %(start)s AND bucket < %(rollup_to)s"""
# Closed 1 h rollups per series (summed, or per hour for the priced series), reused for HOUR_CACHE_SECONDS: a page polling the same
# range reads 168 rows per series once, then only the last hour's. Keyed by the series ids (already
# scoped) and the hours covered; a late rollup recomputation shows within HOUR_CACHE_SECONDS.
HOUR_CACHE_SECONDS = 60.0
HOUR_CACHE_ENTRIES = 64
_hour_cache: dict[tuple, tuple[float, dict[int, list[tuple[float | None, float]]]]] = {}


def hour_tier(
    ids: list[int], start: datetime, rollup_to: datetime, per_bucket: bool
) -> dict[int, list[tuple[float | None, float]]]:
    """Per series, the 1 h rollups' increases with bucket in [start, rollup_to): summed (bucket
    None), or one (bucket start, increase) per hour with ``per_bucket``."""
    first_hour = math.ceil(start.timestamp() / 3600)
    key = (tuple(sorted(ids)), first_hour, rollup_to.timestamp(), per_bucket)
    now = time.monotonic()
    hit = _hour_cache.get(key)
    if hit is not None and now - hit[0] < HOUR_CACHE_SECONDS:
        return hit[1]
    if per_bucket:
        sql = f"SELECT series_id, extract(epoch FROM t), increase FROM ({HOUR_TIER_SQL}) h"
    else:
        sql = f"SELECT series_id, NULL::float8, sum(increase) FROM ({HOUR_TIER_SQL}) h GROUP BY 1"
    rows: dict[int, list[tuple[float | None, float]]] = defaultdict(list)
    with connection.cursor() as cursor:
        cursor.execute(sql, {"ids": list(key[0]), "start": start, "rollup_to": rollup_to})
        for sid, bucket, value in cursor.fetchall():
            if value is not None:
                rows[sid].append((None if bucket is None else float(bucket), float(value)))
    if len(_hour_cache) >= HOUR_CACHE_ENTRIES:
        _hour_cache.clear()
    _hour_cache[key] = (now, rows)
    return rows


def tiered_rows(
    level: str, infos: list[query.SeriesInfo], start: datetime, end: datetime, hour_tier: bool = True
) -> tuple[str, dict[str, Any]]:
    """The uniform rows' SELECT and parameters; at the 1 h level three tiers: 1 h rollups up to
    their mark, 1 min rollups from there to theirs, raw samples after (at most a minute or so),
    instead of up to an hour of raw samples after the 1 h mark."""
    params = query.row_params(level, infos, start, end)
    if level != query.LEVEL_1H:
        return query.rows_sql(level), params
    done = query.done_until(query.LEVEL_1M)
    hour_to = params["rollup_to"]
    minute_to = hour_to
    if done is not None:
        aligned = datetime.fromtimestamp(math.floor(done.timestamp() / 60) * 60, tz=done.tzinfo)
        minute_to = min(max(aligned, hour_to), end)
    params.update(minute_from=hour_to, minute_to=minute_to, raw_from=minute_to)
    if minute_to > hour_to:  # the raw tail follows the minute tier: its previous sample is recent
        params["lookback"] = min(params["lookback"], TAIL_LOOKBACK)
    hours = HOUR_TIER_SQL + " UNION ALL" if hour_tier else ""
    sql = f"""
        {hours}
        SELECT series_id, bucket AS t, increase FROM monitoring_rollup_1m
        WHERE series_id = ANY(%(ids)s) AND bucket >= %(minute_from)s AND bucket < %(minute_to)s
        UNION ALL
        SELECT series_id, t, increase FROM ({query._raw_rows_sql()}) raw
    """
    return sql, params


def increases(
    series: list[Found],
    start: datetime,
    end: datetime,
    level: str,
    step: int,
    bucketed: set[int] | None = None,
) -> tuple[dict[int, float], dict[int, list[tuple[float, float]]]]:
    """Counter increases in [start, end): per series, and per ``step`` bucket for ``bucketed``
    series (every series when ``bucketed`` is None)."""
    totals: dict[int, float] = {}
    buckets: dict[int, list[tuple[float, float]]] = defaultdict(list)
    if not series:
        return totals, buckets
    if bucketed is None:
        per_bucket, plain = series, []
    else:
        per_bucket = [s for s in series if s.id in bucketed]
        plain = [s for s in series if s.id not in bucketed]
    # Two statements: the plain series summed per series only (most rows: no time arithmetic),
    # the bucketed ones (a few) per bucket.
    for group, by_bucket in ((plain, False), (per_bucket, True)):
        if not group:
            continue
        infos = [query.SeriesInfo(s.id, Series.COUNTER, s.labels) for s in group]
        # The closed hours come from the cache when their rows need no other bucketing.
        cached_hours = level == query.LEVEL_1H and (not by_bucket or step == 3600)
        rows_sql, params = tiered_rows(level, infos, start, end, hour_tier=not cached_hours)
        params["step"] = step
        if cached_hours:
            for sid, rows in hour_tier(params["ids"], start, params["rollup_to"], by_bucket).items():
                for bucket, value in rows:
                    totals[sid] = totals.get(sid, 0.0) + value
                    if bucket is not None:
                        buckets[sid].append((bucket, value))
        if not by_bucket:
            bucket_expr = "NULL::float8"
        elif step:
            bucket_expr = (
                "extract(epoch FROM date_bin(make_interval(secs => %(step)s), r.t, 'epoch'::timestamptz))"
            )
        else:  # each raw sample at its own time (prices looked up exactly)
            bucket_expr = "extract(epoch FROM r.t)"
        sql = (
            f"WITH r AS ({rows_sql}) SELECT r.series_id, {bucket_expr}, sum(r.increase) FROM r GROUP BY 1, 2"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for sid, bucket, value in cursor.fetchall():
                if value is None:
                    continue
                totals[sid] = totals.get(sid, 0.0) + float(value)
                if bucket is not None:
                    buckets[sid].append((float(bucket), float(value)))
    return totals, buckets


def histogram_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Prometheus' histogram_quantile over cumulative bucket counts keyed by upper bound."""
    if not buckets or math.inf not in buckets:
        return None
    bounds = sorted(buckets)
    counts = [buckets[b] for b in bounds]
    for i in range(1, len(counts)):  # counts must not decrease (mixed scrapes): as Prometheus does
        counts[i] = max(counts[i], counts[i - 1])
    total = counts[-1]
    if total <= 0:
        return None
    rank = q * total
    for i, (bound, count) in enumerate(zip(bounds, counts, strict=True)):
        if count >= rank:
            if bound == math.inf:
                return bounds[-2] if len(bounds) > 1 else None
            lower = bounds[i - 1] if i > 0 else 0.0
            below = counts[i - 1] if i > 0 else 0.0
            if bound <= 0 or count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
    return None


def le_of(labels: dict[str, str]) -> float | None:
    raw = labels.get("le", "")
    try:
        return math.inf if raw in ("+Inf", "Inf", "inf") else float(raw)
    except ValueError:
        return None


def quantiles(hist: dict[float, float]) -> dict[str, float | None]:
    return {"p50": _round(histogram_quantile(0.5, hist)), "p95": _round(histogram_quantile(0.95, hist))}


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


class Accumulator:
    """Figures of one (model, organization) row."""

    def __init__(self) -> None:
        self.requests = 0.0
        self.errors = 0.0
        self.input_tokens = 0.0
        self.output_tokens = 0.0
        self.reported_cost = 0.0
        self.priced_cost = 0.0
        self.unknown_price_input = 0.0
        self.unknown_price_output = 0.0
        self.latency: dict[float, float] = defaultdict(float)
        self.ttft: dict[float, float] = defaultdict(float)

    @property
    def cost(self) -> float:
        return self.reported_cost + self.priced_cost


def accumulate(
    series: list[Found],
    totals: dict[int, float],
    buckets: dict[int, list[tuple[float, float]]],
    prices: PriceTable,
    by_organization: bool,
) -> dict[Key, Accumulator]:
    """Sum the series' increases into one Accumulator per model (and organisation)."""
    rows: dict[Key, Accumulator] = defaultdict(Accumulator)
    pending_unpriced: dict[tuple[Key, int], list[float]] = {}
    for s in series:
        value = totals.get(s.id)
        if value is None:
            continue
        key = (s.model, s.organization if by_organization else "")
        acc = rows[key]
        name = s.name
        if name == c.REQUESTS:
            acc.requests += value
            if s.labels.get("status") == c.ERROR:
                acc.errors += value
        elif name == c.INPUT_TOKENS:
            acc.input_tokens += value
        elif name == c.OUTPUT_TOKENS:
            acc.output_tokens += value
        elif name == c.COST:
            acc.reported_cost += value
        elif name in (c.UNPRICED_INPUT_TOKENS, c.UNPRICED_OUTPUT_TOKENS):
            is_input = name == c.UNPRICED_INPUT_TOKENS
            for t, tokens in buckets.get(s.id, ()):
                pair = pending_unpriced.setdefault((key, t), [0.0, 0.0])
                pair[0 if is_input else 1] += tokens
        elif name.endswith("_bucket"):
            le = le_of(s.labels)
            if le is None:
                continue
            target = acc.latency if name == c.DURATION + "_bucket" else acc.ttft
            target[le] += value
    for (key, t), (tokens_in, tokens_out) in pending_unpriced.items():
        acc = rows[key]
        cost = prices.cost(key[0], float(t), tokens_in, tokens_out)
        if cost is None:
            acc.unknown_price_input += tokens_in
            acc.unknown_price_output += tokens_out
        else:
            acc.priced_cost += cost
    return rows


def model_rows(
    start: datetime,
    end: datetime,
    model: str | None = None,
    organization: str | None = None,
    by_organization: bool = False,
) -> list[dict[str, Any]]:
    """The figures of every model with data in the scope (see the module docstring)."""
    series = select(COUNTERS, model, organization)
    level, width = totals_level(start, end)
    unpriced = {s.id for s in series if s.name in (c.UNPRICED_INPUT_TOKENS, c.UNPRICED_OUTPUT_TOKENS)}
    totals, buckets = increases(series, start, end, level, width, unpriced)
    models = sorted({s.model for s in series})
    prices = PriceTable(models)
    rows = accumulate(series, totals, buckets, prices, by_organization)
    seconds = max((end - start).total_seconds(), 1.0)
    server = server_figures(models, end)
    hosts = serving_hosts(models, model, organization, end)
    out = []
    for (name, org), acc in sorted(rows.items()):
        if acc.requests == 0 and acc.input_tokens == 0 and acc.output_tokens == 0 and acc.cost == 0:
            continue
        row: dict[str, Any] = {"model": name}
        if by_organization:
            row["organization"] = org
        row.update(figures(acc, seconds))
        row["server"] = server.get(name)
        row["hosts"] = hosts.get(name, [])
        out.append(row)
    return out


def figures(acc: Accumulator, seconds: float) -> dict[str, Any]:
    return {
        "requests": round(acc.requests),
        "errors": round(acc.errors),
        "error_rate": round(acc.errors / acc.requests, 6) if acc.requests else None,
        "requests_per_second": round(acc.requests / seconds, 6),
        "input_tokens": round(acc.input_tokens),
        "output_tokens": round(acc.output_tokens),
        "input_tokens_per_second": round(acc.input_tokens / seconds, 6),
        "output_tokens_per_second": round(acc.output_tokens / seconds, 6),
        "latency_seconds": quantiles(acc.latency),
        "time_to_first_token_seconds": quantiles(acc.ttft),
        "cost_usd": round(acc.cost, 8),
        "cost_reported_usd": round(acc.reported_cost, 8),
        "cost_priced_usd": round(acc.priced_cost, 8),
        "tokens_without_price": {
            "input": round(acc.unknown_price_input),
            "output": round(acc.unknown_price_output),
        },
    }


def latest_values(series: list[Found], end: datetime) -> dict[int, float]:
    """The newest raw value of each series in (end - GAUGE_LOOKBACK, end]."""
    if not series:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT ON (series_id) series_id, value FROM monitoring_sample "
            "WHERE series_id = ANY(%s) AND ts > %s AND ts <= %s ORDER BY series_id, ts DESC",
            [[s.id for s in series], end - GAUGE_LOOKBACK, end],
        )
        return {sid: float(value) for sid, value in cursor.fetchall()}


def server_figures(models: list[str], end: datetime) -> dict[str, dict[str, Any]]:
    """Model-server gauges (latest, summed over hosts; KV cache: the fullest host) and TPOT quantiles."""
    gauges = [s for s in select(SERVER_GAUGES) if not models or s.model in models]
    tpot = [s for s in select((TPOT_BUCKET,)) if not models or s.model in models]
    latest = latest_values(gauges, end)
    out: dict[str, dict[str, Any]] = {}
    for s in gauges:
        if s.id not in latest:
            continue
        row = out.setdefault(s.model, _empty_server())
        value = latest[s.id]
        if s.name == c.KV_CACHE:
            row["kv_cache_usage_ratio"] = max(row["kv_cache_usage_ratio"] or 0.0, value)
        else:
            field = "requests_running" if s.name == c.RUNNING else "requests_waiting"
            row[field] = (row[field] or 0.0) + value
    if tpot:
        level, width = totals_level(end - GAUGE_LOOKBACK, end)
        totals, _ = increases(tpot, end - GAUGE_LOOKBACK, end, level, width, set())
        hists: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
        for s in tpot:
            le = le_of(s.labels)
            if le is not None and s.id in totals:
                hists[s.model][le] += totals[s.id]
        for name, hist in hists.items():
            out.setdefault(name, _empty_server())["time_per_output_token_seconds"] = quantiles(hist)
    return out


def _empty_server() -> dict[str, Any]:
    return {
        "requests_running": None,
        "requests_waiting": None,
        "kv_cache_usage_ratio": None,
        "time_per_output_token_seconds": None,
    }


def serving_hosts(
    models: list[str], model: str | None, organization: str | None, end: datetime
) -> dict[str, list[dict[str, Any]]]:
    """The hosts that sent each model's series, with their latest GPU utilisation (mean of their GPUs)."""
    if not models:
        return {}
    clause, org_params = scope.sql_filter("organization_id")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT labels ->> 'model', labels ->> 'host' FROM monitoring_series "
            f"WHERE name = ANY(%s) AND {clause} AND labels ->> 'model' = ANY(%s) AND labels ? 'host'",
            [[c.REQUESTS, *SERVER_GAUGES], *org_params, models],
        )
        pairs = cursor.fetchall()
    hosts = sorted({h for _, h in pairs})
    gpu = [s for s in select((GPU_METRIC,)) if s.labels.get("host") in hosts]
    latest = latest_values(gpu, end)
    per_host: dict[str, list[float]] = defaultdict(list)
    for s in gpu:
        if s.id in latest:
            per_host[s.labels["host"]].append(latest[s.id])
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for name, host in sorted(pairs):
        values = per_host.get(host)
        out[name].append(
            {"host": host, "gpu_utilization_percent": round(sum(values) / len(values), 3) if values else None}
        )
    return out


FIGURES: dict[str, dict[str, Any]] = {
    "requests": {"title": "Requests per second", "unit": "req/s", "names": (c.REQUESTS,)},
    "errors": {"title": "Errors per second", "unit": "req/s", "names": (c.REQUESTS,)},
    "tokens": {"title": "Tokens per second", "unit": "tokens/s", "names": (c.INPUT_TOKENS, c.OUTPUT_TOKENS)},
    "latency_p95": {"title": "Latency p95", "unit": "s", "names": (c.DURATION + "_bucket",)},
    "ttft_p95": {"title": "Time to first token p95", "unit": "s", "names": (c.TTFT + "_bucket",)},
    "cost": {
        "title": "Cost per bucket",
        "unit": "USD",
        "names": (c.COST, c.UNPRICED_INPUT_TOKENS, c.UNPRICED_OUTPUT_TOKENS),
    },
}


def chart_step(start: datetime, end: datetime, points: int) -> tuple[str, int]:
    """The source and the bucket width giving at most ``points`` buckets, a whole number of rollups."""
    step = max(10, math.ceil((end - start).total_seconds() / points))
    level = query.choose_level(start, end, step)
    width = query.LEVEL_SECONDS.get(level, 0)
    if width and step % width:
        step = (step // width + 1) * width
    return level, step


def figure_series(
    figure: str,
    start: datetime,
    end: datetime,
    points: int,
    model: str | None = None,
    organization: str | None = None,
    by_organization: bool = False,
) -> dict[str, Any]:
    """One chart's lines (one per model, or per model and organisation) on a shared time axis."""
    spec = FIGURES[figure]
    level, step = chart_step(start, end, points)
    series = select(spec["names"], model, organization)
    _, buckets = increases(series, start, end, level, step, None)
    prices = PriceTable(sorted({s.model for s in series})) if figure == "cost" else None
    lines: dict[tuple[str, ...], dict[int, Any]] = defaultdict(dict)
    for s in series:
        base = (s.model, s.organization) if by_organization else (s.model,)
        for t, value in buckets.get(s.id, ()):
            if figure == "requests":
                _add(lines[base], t, value / step)
            elif figure == "errors":
                if s.labels.get("status") == c.ERROR:
                    _add(lines[base], t, value / step)
                else:
                    lines[base].setdefault(t, 0.0)
            elif figure == "tokens":
                kind = "input" if s.name == c.INPUT_TOKENS else "output"
                _add(lines[(*base, kind)], t, value / step)
            elif figure in ("latency_p95", "ttft_p95"):
                le = le_of(s.labels)
                if le is not None:
                    hist = lines[base].setdefault(t, defaultdict(float))
                    hist[le] += value
            elif s.name == c.COST:
                _add(lines[base], t, value)
            else:
                is_input = s.name == c.UNPRICED_INPUT_TOKENS
                tokens = (value, 0.0) if is_input else (0.0, value)
                cost = prices.cost(s.model, float(t), *tokens) if prices else None
                _add(lines[base], t, cost or 0.0)
    if figure in ("latency_p95", "ttft_p95"):
        for line in lines.values():
            for t, hist in list(line.items()):
                line[t] = histogram_quantile(0.95, hist)
    stamps = sorted({t for line in lines.values() for t in line})
    times = [int(t) for t in stamps]
    out_series = []
    for key in sorted(lines):
        line = lines[key]
        labels = {"model": key[0]}
        if by_organization:
            labels["organization"] = key[1]
        if figure == "tokens":
            labels["direction"] = key[-1]
        label = " ".join(v for v in labels.values() if v) or "(none)"
        values = [None if line.get(t) is None else round(line[t], 8) for t in stamps]
        out_series.append({"label": label, "labels": labels, "values": values})
    return {
        "name": figure,
        "title": spec["title"],
        "unit": spec["unit"],
        "start": int(start.timestamp()),
        "end": int(end.timestamp()),
        "step": step,
        "source": level,
        "timestamps": times,
        "series": out_series,
    }


def _add(line: dict[int, Any], t: int, value: float) -> None:
    line[t] = (line.get(t) or 0.0) + value


def daily_costs(
    start: datetime, end: datetime, model: str | None = None, organization: str | None = None
) -> list[dict[str, Any]]:
    """Cost and tokens per UTC day, model and organisation in [start, end)."""
    series = select(
        (
            c.COST,
            c.UNPRICED_INPUT_TOKENS,
            c.UNPRICED_OUTPUT_TOKENS,
            c.INPUT_TOKENS,
            c.OUTPUT_TOKENS,
            c.REQUESTS,
        ),
        model,
        organization,
    )
    level, width = priced_level(start, end)
    _, buckets = increases(series, start, end, level, width, None)
    prices = PriceTable(sorted({s.model for s in series}))
    days: dict[tuple[int, str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for s in series:
        for t, value in buckets.get(s.id, ()):
            row = days[(int(t // 86400 * 86400), s.model, s.organization)]
            if s.name == c.COST:
                row["cost_usd"] += value
            elif s.name == c.REQUESTS:
                row["requests"] += value
            elif s.name == c.INPUT_TOKENS:
                row["input_tokens"] += value
            elif s.name == c.OUTPUT_TOKENS:
                row["output_tokens"] += value
            else:
                is_input = s.name == c.UNPRICED_INPUT_TOKENS
                cost = prices.cost(s.model, float(t), value if is_input else 0.0, 0.0 if is_input else value)
                if cost is None:
                    row["tokens_without_price"] += value
                else:
                    row["cost_usd"] += cost
    out = []
    for (day, name, org), row in sorted(days.items()):
        out.append(
            {
                "day": datetime.fromtimestamp(day, tz=UTC).date().isoformat(),
                "model": name,
                "organization": org,
                "requests": round(row["requests"]),
                "input_tokens": round(row["input_tokens"]),
                "output_tokens": round(row["output_tokens"]),
                "cost_usd": round(row["cost_usd"], 8),
                "tokens_without_price": round(row["tokens_without_price"]),
            }
        )
    return out


def spent(start: datetime, end: datetime, model: str | None, organization: str | None) -> float:
    """The cost in [start, end) of a model (None: all) and customer organisation (None: all)."""
    series = select((c.COST, c.UNPRICED_INPUT_TOKENS, c.UNPRICED_OUTPUT_TOKENS), model, organization)
    level, width = priced_level(start, end)
    unpriced = {s.id for s in series if s.name != c.COST}
    totals, buckets = increases(series, start, end, level, width, unpriced)
    rows = accumulate(series, totals, buckets, PriceTable(sorted({s.model for s in series})), False)
    return sum(acc.cost for acc in rows.values())
