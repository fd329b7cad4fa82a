"""Each model's serving hosts (those reporting model-server series for it) with their GPU utilisation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import connection

from collector_server.monitoring import query
from collector_server.orgs import scope
from shared import llm_series as llm

# Series only a model server reports (an app calling a model reports none of these).
SERVER_SERIES = (llm.RUNNING, llm.WAITING, llm.KV_CACHE, f"{llm.TPOT}_count")
GPU_UTILISATION = "gpu_utilization_percent"
MAX_ROWS = 500


def serving_hosts(start: datetime, end: datetime) -> list[dict[str, Any]]:
    """[{model, hosts: [{host, gpus, gpu_utilization_percent}]}] ordered by model then host.

    GPU utilisation: the average over the range of the host's GPUs (None: no GPU series).
    """
    org_clause, org_params = scope.sql_filter("organization_id")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT labels->>'model', labels->>'host' FROM monitoring_series "
            f"WHERE name = ANY(%s) AND labels ? 'model' AND {org_clause} ORDER BY 1, 2 LIMIT %s",
            [list(SERVER_SERIES), *org_params, MAX_ROWS],
        )
        pairs = cursor.fetchall()
    gpu = _gpu_by_host(sorted({host for _, host in pairs if host}), start, end)
    models: dict[str, list[dict[str, Any]]] = {}
    for model, host in pairs:
        utilisation, gpus = gpu.get(host, (None, 0))
        models.setdefault(model, []).append(
            {"host": host, "gpus": gpus, "gpu_utilization_percent": utilisation}
        )
    return [{"model": model, "hosts": hosts} for model, hosts in models.items()]


def _gpu_by_host(hosts: list[str], start: datetime, end: datetime) -> dict[str, tuple[float | None, int]]:
    step = max(60, int((end - start).total_seconds()))
    out: dict[str, tuple[float | None, int]] = {}
    for host in hosts:
        result = query.run_query(
            GPU_UTILISATION, [query.Matcher("host", "=", host)], start, end, step, "avg", ["gpu"]
        )
        means = [sum(v for _, v in g["points"]) / len(g["points"]) for g in result.series if g["points"]]
        if means:
            out[host] = (round(sum(means) / len(means), 2), len(means))
    return out
