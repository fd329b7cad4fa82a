"""Running totals of span-derived counters, kept in the stream Redis.

A span is one event; the contract's series are cumulative counters. The web process adds
a request's increments to one hash per organisation (HINCRBYFLOAT, in a Lua script) and
queues the totals it reads back, stamped with the Redis clock of that same script, so
points of one series go up with time whichever web process handled them. A request body
seen in the last day (a sender's retry) adds nothing again: its totals are read and
queued as they are. A hash holds at most MAX_SERIES series; increments of further series
are refused and counted (``otlp_genai_series_refused``). Losing the hash (a Redis without
persistence restarting) is a counter reset, which rate() and increase() handle.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

from collector_server.prometheus_api.genai_spans import Increments
from collector_server.redis_conn import get_stream_redis
from shared import streams
from shared.wire import COUNTER

MAX_SERIES = 50_000
SEEN_SECONDS = 86_400
# A process (host, service, instance) that sent GenAI metrics in the last hour gets its request
# figures from them: its spans then give log records only (OpenTelemetry's GenAI
# instrumentations emit both). Another process on the same host still counts its spans.
METRICS_HOST_SECONDS = 3_600
SOURCE_LABEL = ("source", "otel-spans")
BEFORE_OFFSET = 0.001  # the "before" point, 1 ms before the "after" one (PromQL reads milliseconds)
ZERO_SECONDS = 7 * 86_400

# KEYS: totals hash, seen-body key. ARGV: seen ttl, max fields, then field, increment pairs.
# Returns [seconds, microseconds, then one total per field ('' when refused)].
_SCRIPT = """
local fresh = redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1])
local size = redis.call('HLEN', KEYS[1])
local limit = tonumber(ARGV[2])
local out = {}
for i = 3, #ARGV, 2 do
  local field = ARGV[i]
  local value
  if fresh then
    if size < limit or redis.call('HEXISTS', KEYS[1], field) == 1 then
      if redis.call('HEXISTS', KEYS[1], field) == 0 then size = size + 1 end
      value = redis.call('HINCRBYFLOAT', KEYS[1], field, ARGV[i + 1])
    end
  else
    value = redis.call('HGET', KEYS[1], field)
  end
  out[#out + 1] = value or ''
end
local now = redis.call('TIME')
table.insert(out, 1, fresh and 1 or 0)
table.insert(out, 1, now[2])
table.insert(out, 1, now[1])
return out
"""


def _base(org_id: int | None) -> str:
    return f"{streams.prefix()}:{{llm-spans}}:{'default' if org_id is None else org_id}"


Source = tuple[str, str, str]  # (host, service, instance): one process


def _metrics_source_key(org_id: int | None, source: Source) -> str:
    digest = hashlib.sha256(json.dumps(list(source)).encode()).hexdigest()[:32]
    return f"{_base(org_id)}:metrics-source:{digest}"


def _source(host: str, labels: Any) -> Source:
    found = dict(labels)
    return host, found.get("service", ""), found.get("instance", "")


def note_metrics_sources(by_host: dict[str, list[dict[str, Any]]], org_id: int | None) -> None:
    """Remember which processes (host, service, instance) send GenAI metrics: their spans then add no counters."""
    sources = sorted({_source(host, item["labels"]) for host, items in by_host.items() for item in items})
    if sources:
        pipe = get_stream_redis().pipeline(transaction=False)
        for source in sources:
            pipe.set(_metrics_source_key(org_id, source), "1", ex=METRICS_HOST_SECONDS)
        pipe.execute()


def _without_metrics_sources(increments: Increments, org_id: int | None, counts: Counter[str]) -> Increments:
    sources = sorted({_source(host, labels) for host, _, labels in increments})
    flags = get_stream_redis().mget([_metrics_source_key(org_id, source) for source in sources])
    skipped = {source for source, flag in zip(sources, flags, strict=True) if flag}
    if not skipped:
        return increments
    kept = {key: value for key, value in increments.items() if _source(key[0], key[2]) not in skipped}
    counts["otlp_genai_span_series_left_to_metrics"] += len(increments) - len(kept)
    return kept


def add_zero_points(by_host: dict[str, list[dict[str, Any]]], org_id: int | None) -> None:
    """Put a zero point at each contract series' start time, the first time that start is seen.

    OpenTelemetry's cumulative points say since when they count (``start_time_unix_nano``):
    without a zero there, the first export's counts would not read as an increase (Prometheus'
    created-timestamp zero injection does the same). Seen starts are remembered a week.
    """
    entries = [(host, item) for host, items in by_host.items() for item in items if item.get("start")]
    if not entries:
        return
    pipe = get_stream_redis().pipeline(transaction=False)
    for host, item in entries:
        identity = json.dumps([host, item["name"], sorted(item["labels"].items()), item["start"]])
        digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
        pipe.set(f"{_base(org_id)}:started:{digest}", "1", nx=True, ex=ZERO_SECONDS)
    for (_, item), first in zip(entries, pipe.execute(), strict=True):
        if first and item["start"] < item["points"][0][0]:
            item["points"].insert(0, [item["start"], 0.0])
    for items in by_host.values():
        for item in items:
            item.pop("start", None)


def _keys(org_id: int | None, body: bytes) -> list[str]:
    base = _base(org_id)
    digest = hashlib.sha256(body).hexdigest()
    return [f"{base}:totals", f"{base}:seen:{digest}"]


def totals(
    increments: Increments, body: bytes, org_id: int | None, counts: Counter[str]
) -> dict[str, list[dict[str, Any]]]:
    """Add the increments; return the cumulative series (wire format) by host."""
    increments = _without_metrics_sources(increments, org_id, counts) if increments else increments
    if not increments:
        return {}
    items = sorted(increments.items())
    fields = [
        json.dumps([host, name, list(labels)], separators=(",", ":")) for (host, name, labels), _ in items
    ]
    args: list[Any] = [SEEN_SECONDS, MAX_SERIES]
    for field, (_, value) in zip(fields, items, strict=True):
        args.extend([field, repr(float(value))])
    reply = get_stream_redis().eval(_SCRIPT, 2, *_keys(org_id, body), *args)
    ts = int(reply[0]) + int(reply[1]) / 1e6
    by_host: dict[str, list[dict[str, Any]]] = {}
    fresh = bool(int(reply[2]))
    for ((host, name, labels), increment), total in zip(items, reply[3:], strict=True):
        if total in (b"", ""):
            counts["otlp_genai_series_refused"] += 1
            continue
        after = float(total)
        # Before and after (as the inference endpoint does): the stored counter shows this
        # request's increase however long since the series' last point, a new series too.
        points = [[ts - BEFORE_OFFSET, after - increment], [ts, after]] if fresh else [[ts, after]]
        by_host.setdefault(host, []).append(
            {"name": name, "type": COUNTER, "labels": dict((*labels, SOURCE_LABEL)), "points": points}
        )
    counts["otlp_genai_series_queued"] += sum(len(v) for v in by_host.values())
    return by_host
