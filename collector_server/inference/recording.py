"""Record one inference sent over HTTP: counters kept in Redis, samples queued to the ingest stream.

The web process does not write samples. Per tenant organisation a Redis hash holds the
cumulative value of every inference series the endpoint feeds; one Lua call adds the
inference's increments and returns, for each series touched, the value before and after at
a Redis-clock time that never goes backwards. The batch queued (server-signed, like remote
write) carries both points (``[t - 2 µs, before]``, ``[t, after]``), so the stored counter
shows the increase whatever the gap since the previous inference. The request-level detail
(request id, user, API key label, exact duration, tokens, cost) is one log record in the logs
stream, found under /logs/requests/{request_id}.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections import Counter
from typing import Any

from collector_server.prometheus_api import stream_queue
from collector_server.redis_conn import get_redis
from shared import inference as c
from shared import streams
from shared.wire import COUNTER

SOURCE = "inference-api"
HOST = "inference-api"  # the host label of the series the endpoint writes
INSTANCE = "api"
KEY_PREFIX = "fleetwatch:inference:counters:"
GAP_US = 2  # the "before" point sits this many microseconds before the "after" point

# Distinct series one organisation's endpoint counters may hold (a hash field each): a client
# inventing model names cannot grow Redis without bound; beyond it new label sets are a 429.
MAX_SERIES = 20_000

# KEYS[1]: the hash; ARGV[1]: the cap; then field, increment, field, increment, ...
# Returns {time_us, before1, after1, before2, after2, ...} (numbers as strings), or {-1, size}
# when a new field would pass the cap (nothing changed).
_SCRIPT = """
local size = redis.call('HLEN', KEYS[1])
local new = 0
for i = 2, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 0 then new = new + 1 end
end
if new > 0 and size + new > tonumber(ARGV[1]) then return {-1, size} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = tonumber(redis.call('HGET', KEYS[1], '__ts') or '0')
if now <= last + 4 then now = last + 5 end
redis.call('HSET', KEYS[1], '__ts', string.format('%.0f', now))
local out = {string.format('%.0f', now)}
for i = 2, #ARGV, 2 do
  local before = redis.call('HGET', KEYS[1], ARGV[i]) or '0'
  local after = redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], ARGV[i + 1])
  table.insert(out, before)
  table.insert(out, after)
end
return out
"""


class TooManySeries(Exception):
    """The organisation's endpoint counters hold MAX_SERIES label sets already."""

    def __init__(self, size: int) -> None:
        super().__init__(
            f"this organisation's inference counters hold {size} series (limit {MAX_SERIES}); "
            "a new model/organization pair is refused"
        )


def increments(data: dict[str, Any]) -> list[tuple[str, dict[str, str], float]]:
    """The (series name, labels, increment) of one validated inference."""
    base = {"model": data["model"], "organization": data["organization"], "instance": INSTANCE}
    out: list[tuple[str, dict[str, str], float]] = [(c.REQUESTS, {**base, "status": data["status"]}, 1.0)]
    out.extend(histogram(c.DURATION, c.DURATION_BUCKETS, base, data["duration"]))
    if data.get("time_to_first_token") is not None:
        out.extend(histogram(c.TTFT, c.TTFT_BUCKETS, base, data["time_to_first_token"]))
    tokens_in = data.get("input_tokens") or 0
    tokens_out = data.get("output_tokens") or 0
    if data.get("input_tokens") is not None:
        out.append((c.INPUT_TOKENS, base, float(tokens_in)))
    if data.get("output_tokens") is not None:
        out.append((c.OUTPUT_TOKENS, base, float(tokens_out)))
    if data.get("cost") is not None:
        out.append((c.COST, base, float(data["cost"])))
    else:
        if tokens_in:
            out.append((c.UNPRICED_INPUT_TOKENS, base, float(tokens_in)))
        if tokens_out:
            out.append((c.UNPRICED_OUTPUT_TOKENS, base, float(tokens_out)))
    return out


def histogram(
    name: str, bounds: tuple[float, ...], base: dict[str, str], value: float
) -> list[tuple[str, dict[str, str], float]]:
    """The increments of one observation: every bucket from its own up to +Inf, _sum and _count."""
    slot = bisect_left(bounds, value)
    les = c.bucket_labels(bounds)
    out = [(name + "_bucket", {**base, "le": le}, 1.0) for le in les[slot:]]
    out.append((name + "_sum", base, float(value)))
    out.append((name + "_count", base, 1.0))
    return out


def record(org_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """Count the inference, queue its samples and its log record; return what was recorded."""
    incs = increments(data)
    fields = [json.dumps([name, labels], sort_keys=True, separators=(",", ":")) for name, labels, _ in incs]
    argv: list[Any] = [MAX_SERIES]
    for field, (_, _, inc) in zip(fields, incs, strict=True):
        argv.extend((field, repr(inc)))
    client = get_redis()
    reply = client.eval(_SCRIPT, 1, f"{KEY_PREFIX}{org_id}", *argv)
    if int(reply[0]) == -1:
        raise TooManySeries(int(reply[1]))
    now_us = int(reply[0])
    ts = now_us / 1e6
    before_ts = (now_us - GAP_US) / 1e6
    series = []
    for i, (name, labels, _) in enumerate(incs):
        before, after = float(reply[1 + 2 * i]), float(reply[2 + 2 * i])
        series.append(
            {"name": name, "type": COUNTER, "labels": labels, "points": [[before_ts, before], [ts, after]]}
        )
    identity = f"{org_id}:{now_us}".encode()
    counts: Counter[str] = Counter({"inference_api_records_queued": 1})
    stream_queue.queue(streams.METRICS, SOURCE, identity, {HOST: series}, counts, org_id)
    stream_queue.queue(streams.LOGS, SOURCE, identity, {HOST: [log_record(data, ts)]}, None, org_id)
    return {"recorded_at": ts, "series": len(series)}


def log_record(data: dict[str, Any], ts: float) -> dict[str, Any]:
    """The inference's log record (the seed's logPerformance('model_inference', ...))."""
    attrs: dict[str, Any] = {
        "event": "model_inference",
        "model": data["model"],
        "organization": data["organization"],
        "status": data["status"],
        "duration_ms": round(data["duration"] * 1000.0, 3),
        # The seed's logPerformance('model_inference', {modelName, duration, organization, cost}) names;
        # duration in milliseconds as there.
        "modelName": data["model"],
        "duration": round(data["duration"] * 1000.0, 3),
    }
    for name in ("input_tokens", "output_tokens", "cost", "time_to_first_token", "user", "api_key_label"):
        if data.get(name) not in (None, ""):
            attrs[name] = data[name]
    record: dict[str, Any] = {
        "ts": ts,
        "level": "ERROR" if data["status"] == c.ERROR else "INFO",
        "message": f"model_inference {data['model']}",
        "service": SOURCE,
        "logger": "fleetwatch.inference",
        "attrs": attrs,
    }
    if data.get("request_id"):
        record["request_id"] = data["request_id"]
    return record
