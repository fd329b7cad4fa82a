"""`/metrics`: the pipeline's own figures in the Prometheus text exposition format (0.0.4).

Read at scrape time from Redis (pipeline counters, streams, RQ) and Postgres (hosts).
Written by hand so the server needs no client library. If Redis or Postgres cannot be
read, `fleetwatch_up{component=...}` is 0 and the other figures from it are left out.

Two views (docs/api.md, "GET /metrics"):

- **pipeline-wide** (an anonymous scrape): totals only. No label value names an organisation,
  host, agent, channel, rule or user: hosts by state, open alerts by state and severity,
  notifications by status, refusals over a per-host limit by reason, failing channels counted.
- **detailed** (a token or a session): the caller's organisations' figures, labelled
  ``organization`` (and ``host``/``agent_id``/``channel`` where they apply), from the scope.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from typing import Any

import redis
from django.conf import settings
from django.db import DatabaseError
from django.db.models import BooleanField, Count, ExpressionWrapper, Q
from django.http import HttpRequest, HttpResponse
from rq import Worker

from alerting_worker import jobs_guard
from collector_server.monitoring import health
from collector_server.monitoring.models import Host
from shared import host_limits, signing, streams

log = logging.getLogger(__name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
NAMESPACE = "fleetwatch"
PIPELINE_COUNTERS = {
    "samples_ingested": "Metric samples stored.",
    "batches_ingested": "Batches stored.",
    "batches_duplicate": "Batches delivered again and skipped (already stored).",
    "batches_deadlettered": "Batches that could not be decoded, moved to the dead-letter stream.",
    "samples_rejected_too_old": "Samples dropped because they are older than the raw retention.",
    "samples_rejected_future": "Samples dropped because their timestamp is too far in the future.",
    "samples_rejected_invalid": "Samples dropped because their value is not a finite number.",
    "logs_ingested": "Log entries stored.",
    "logs_rejected": "Log entries dropped as invalid.",
    "logs_truncated": "Log messages cut to the maximum stored length (the entry is kept).",
    "jobs_refused": "RQ jobs refused unrun: not JSON, or naming a function outside the allow-list.",
    "deadletters_trimmed": "Oldest dead letters removed to keep the dead-letter stream at DEADLETTER_MAXLEN.",
    "batches_deadlettered_deliveries": "Entries dead-lettered after more than INGEST_MAX_DELIVERIES deliveries.",
    "remote_write_samples_queued": "Samples received by Prometheus remote write and queued to the stream.",
    "remote_write_stale_markers": "Remote-write staleness markers skipped (they carry no value).",
    "otlp_points_queued": "OTLP metric points queued to the stream (histogram buckets counted one by one).",
    "otlp_points_unsupported": "OTLP points skipped: delta temporality or exponential histograms.",
    "otlp_logs_queued": "OTLP log records queued to the stream.",
    "otlp_genai_series_queued": "LLM contract series queued from OpenTelemetry GenAI metrics and spans.",
    "otlp_genai_points_unsupported": "GenAI metric points not mapped: not a cumulative histogram, or an unknown token type.",
    "otlp_genai_points_without_model": "GenAI metric points not mapped: no gen_ai.request.model nor response model.",
    "otlp_spans_genai": "OTLP spans with GenAI attributes (each a request of the LLM series and a log record).",
    "otlp_spans_other": "OTLP spans without GenAI attributes: acknowledged, not stored.",
    "otlp_genai_span_values_refused": "GenAI span token or time values not counted: not a finite number >= 0, or too large.",
    "otlp_genai_point_values_refused": "GenAI metric points not mapped: a sum that is not a finite number >= 0, or too large.",
    "otlp_genai_span_series_left_to_metrics": "GenAI span series not counted: their process sends GenAI metrics.",
    "otlp_genai_series_refused": "GenAI span series not counted: the organisation's running totals are full.",
}
QUEUES = ("ingest", "alerts", "notifications", "maintenance")


class Family:
    """One metric family: HELP, TYPE and its samples."""

    def __init__(self, name: str, kind: str, help_text: str) -> None:
        self.name = name
        self.kind = kind
        self.help_text = help_text
        self.samples: list[tuple[dict[str, str], float]] = []

    def add(self, value: float, **labels: str) -> Family:
        self.samples.append((labels, value))
        return self

    def render(self) -> str:
        lines = [f"# HELP {self.name} {_escape_help(self.help_text)}", f"# TYPE {self.name} {self.kind}"]
        for labels, value in self.samples:
            lines.append(f"{self.name}{_labels(labels)} {_number(value)}")
        return "\n".join(lines)


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    parts = []
    for key, value in labels.items():
        escaped = str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
        parts.append(f'{key}="{escaped}"')
    return "{" + ",".join(parts) + "}"


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def redis_families(
    client: redis.Redis, stream_client: redis.Redis | None = None, detailed: bool = True
) -> list[Family]:
    """Pipeline counters, streams, dead letters (on the streams' Redis), RQ workers and queues.

    Only the per-host limit refusals name a tenant: per host of the scope when ``detailed``,
    else summed by reason.
    """
    stream_client = stream_client or client
    raw = stream_client.hgetall(streams.stats_key())
    stats = {_text(k): int(v) for k, v in raw.items()}
    if stream_client is not client:  # jobs are refused on the RQ Redis, and counted there
        refused_jobs = client.hget(streams.stats_key(), jobs_guard.REFUSED_COUNTER)
        stats[jobs_guard.REFUSED_COUNTER] = int(refused_jobs or 0)
    families = [
        Family(f"{NAMESPACE}_{name}_total", "counter", help_text).add(stats.get(name, 0))
        for name, help_text in PIPELINE_COUNTERS.items()
    ]
    refused = Family(
        f"{NAMESPACE}_batches_refused_total",
        "counter",
        "Batches dead-lettered because their signature was refused (also in batches_deadlettered), by reason.",
    )
    for reason in signing.REASONS:
        refused.add(stats.get(signing.COUNTER_PREFIX + reason, 0), reason=reason)
    families.append(refused)
    length = Family(f"{NAMESPACE}_stream_length", "gauge", "Entries in the stream.")
    lag = Family(f"{NAMESPACE}_stream_lag", "gauge", "Entries not yet delivered to the ingest group.")
    pending = Family(f"{NAMESPACE}_stream_pending", "gauge", "Entries delivered but not yet acknowledged.")
    oldest = Family(
        f"{NAMESPACE}_stream_oldest_pending_seconds", "gauge", "Age of the oldest unacknowledged entry."
    )
    shard_lag = Family(
        f"{NAMESPACE}_stream_shard_lag",
        "gauge",
        "Entries of one stream shard not yet delivered (STREAM_SHARDS > 1).",
    )
    shard_pending = Family(
        f"{NAMESPACE}_stream_shard_pending",
        "gauge",
        "Entries of one stream shard delivered, not acknowledged.",
    )
    for kind in health.STREAM_KINDS:
        state = health.stream_state(stream_client, kind)
        length.add(state["length"], stream=kind)
        lag.add(state["lag"], stream=kind)
        pending.add(state["pending"], stream=kind)
        oldest.add(state["oldest_pending_seconds"], stream=kind)
        for key, shard in state.get("by_shard", {}).items():
            shard_lag.add(shard["lag"], stream=kind, key=key)
            shard_pending.add(shard["pending"], stream=kind, key=key)
    dead = Family(f"{NAMESPACE}_deadletter_length", "gauge", "Entries in the dead-letter stream.")
    dead.add(health.dead_letter_length(stream_client))
    workers = Family(f"{NAMESPACE}_workers", "gauge", "RQ workers registered.").add(Worker.count(client))
    depth = Family(f"{NAMESPACE}_queue_depth", "gauge", "Jobs waiting in an RQ queue.")
    for name in QUEUES:
        depth.add(jobs_guard.get_queue(name, client).count, queue=name)
    limits = limit_family(client) if detailed else limit_totals_family(client)
    sharded = [shard_lag, shard_pending] if shard_lag.samples else []
    return [*families, length, lag, pending, oldest, *sharded, dead, workers, depth, limits]


LIMIT_HELP = "Series, log records or batches refused because their host exceeded a per-host limit."


def limit_family(client: redis.Redis) -> Family:
    """Per host and reason: what the workers refused over a per-host limit (README 'Per-host limits').

    Only the hosts of the active scope's organisations (a host's organisation is decided as
    ingest decides it: its host row, else its enrollment, else the default organisation).
    """
    from collector_server.orgs import scope as org_scope

    family = Family(f"{NAMESPACE}_limit_refused_total", "counter", LIMIT_HELP)
    found_all = host_limits.read_all(client)
    current = org_scope.current()
    orgs: dict[str, int] = {}
    if found_all and current is not None and current.org_ids is not None:
        try:
            orgs = org_scope.organisations_for_agents([found.agent_id for found in found_all])
        except DatabaseError as exc:  # fail closed: no host is shown whose organisation is unknown
            log.warning("metrics: cannot read the hosts' organisations: %s", exc)
            return family
    for found in found_all:
        if current is not None and not current.sees(orgs.get(found.agent_id)):
            continue
        for reason, count in sorted(found.counts.items()):
            family.add(count, host=found.hostname, agent_id=found.agent_id, reason=reason)
    return family


def limit_totals_family(client: redis.Redis) -> Family:
    """Per reason only: the refusals over a per-host limit summed over every host."""
    family = Family(f"{NAMESPACE}_limit_refused_total", "counter", LIMIT_HELP + " Summed over every host.")
    totals = dict.fromkeys(host_limits.REASONS, 0)
    for found in host_limits.read_all(client):
        for reason, count in found.counts.items():
            totals[reason] = totals.get(reason, 0) + count
    for reason, count in sorted(totals.items()):
        family.add(count, reason=reason)
    return family


def host_families(detailed: bool = True) -> list[Family]:
    cutoff = Host.up_cutoff()
    counts = {
        (row["organization__slug"], row["up"]): row["n"]
        for row in Host.objects.annotate(
            up=ExpressionWrapper(Q(last_seen__gte=cutoff), output_field=BooleanField())
        )
        .values("organization__slug", "up")
        .annotate(n=Count("id"))
    }
    if not detailed:
        family = Family(
            f"{NAMESPACE}_hosts", "gauge", "Hosts by state (up: seen within HOST_DOWN_AFTER_SECONDS)."
        )
        family.add(sum(n for (_, up), n in counts.items() if up), state="up")
        family.add(sum(n for (_, up), n in counts.items() if not up), state="down")
        return [family]
    family = Family(
        f"{NAMESPACE}_hosts",
        "gauge",
        "Hosts by organisation and state (up: seen within HOST_DOWN_AFTER_SECONDS).",
    )
    for org in sorted({org for org, _ in counts}):
        family.add(counts.get((org, True), 0), state="up", organization=org)
        family.add(counts.get((org, False), 0), state="down", organization=org)
    return [family]


def collect(detailed: bool = True) -> list[Family]:
    """Return every family; a failing source turns its fleetwatch_up to 0.

    ``detailed``: the active scope's organisations, labelled; else pipeline-wide totals only.
    """
    up = Family(f"{NAMESPACE}_up", "gauge", "Whether the source of these figures could be read.")
    families: list[Family] = []
    try:
        rq_client, stream_client = health.health_redis(), health.health_stream_redis()
        families.extend(
            redis_families(rq_client, stream_client if stream_client is not rq_client else None, detailed)
        )
        up.add(1, component="redis")
    except redis.RedisError as exc:
        log.warning("metrics: cannot read Redis: %s", exc)
        up.add(0, component="redis")
    try:
        from collector_server.alerts.metrics import alert_families  # imports this module's Family

        families.extend(host_families(detailed))
        families.extend(alert_families(detailed))
        up.add(1, component="database")
    except Exception as exc:
        log.warning("metrics: cannot read the database: %s", exc)
        up.add(0, component="database")
    families.extend(replica_families(up))
    return [up, *families]


def replica_families(up: Family) -> list[Family]:
    """With DATABASE_REPLICA_URL: the replica's replay lag (the health endpoint's `replica` check)."""
    from collector_server import replica

    if not replica.configured():
        return []
    state = replica.STATE.current()
    up.add(1 if state.get("reachable") else 0, component="replica")
    if not state.get("reachable"):
        return []
    return [
        Family(f"{NAMESPACE}_replica_lag_seconds", "gauge", "Replay lag of the read replica.").add(
            state["lag_seconds"]
        ),
        Family(
            f"{NAMESPACE}_replica_lag_bytes", "gauge", "WAL received but not yet replayed by the replica."
        ).add(state["lag_bytes"]),
    ]


def render(families: Iterable[Family]) -> str:
    return "\n".join(f.render() for f in families) + "\n"


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Serve the exposition text.

    A caller with a token or a session sees its organisations' figures, labelled
    ``organization`` (a token: its own organisation; a session: its memberships, a superuser's
    session every organisation). An anonymous scrape (a Prometheus server without
    ``authorization``) sees pipeline-wide totals only, with no label value naming a tenant;
    with METRICS_PUBLIC false it is refused (401).
    """
    from collector_server.orgs.resolve import scope_for
    from collector_server.orgs.scope import use_scope

    user, token = _caller(request)
    if user is None and not settings.METRICS_PUBLIC:
        response = HttpResponse("a token is required (METRICS_PUBLIC=false)\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if user is None:
        with use_scope(None):  # totals over every organisation, nothing that names one
            return HttpResponse(render(collect(detailed=False)), content_type=CONTENT_TYPE)
    with use_scope(scope_for(user, token)):
        return HttpResponse(render(collect(detailed=True)), content_type=CONTENT_TYPE)


def _caller(request: HttpRequest) -> tuple[Any, Any]:
    """The token's user and token, or the session user; (None, None) for an anonymous scrape."""
    from rest_framework.exceptions import AuthenticationFailed

    from collector_server.orgs.authentication import ApiTokenAuthentication

    try:
        found = ApiTokenAuthentication().authenticate(request)
    except AuthenticationFailed:
        found = None
    if found is not None:
        return found
    user = getattr(request, "user", None)
    return (user, None) if user is not None and user.is_authenticated else (None, None)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
