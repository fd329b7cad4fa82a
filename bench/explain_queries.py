"""EXPLAIN (ANALYZE, BUFFERS) of every SQL statement behind the read endpoints, as Markdown.

    .venv/bin/python bench/query_api.py --hosts 100 --hours 168 --keep   # seeds the database
    .venv/bin/python bench/explain_queries.py > /tmp/explain.md          # then this

Calls each endpoint once through Django's test client on the kept bench database
(fleetwatch_bench_query) as a member of its organisation, records every statement it runs on
monitoring, alert and log tables (``connection.execute_wrapper``), then runs each recorded
statement again under ``EXPLAIN (ANALYZE, BUFFERS)`` with the same parameters and prints the
plan, its execution time and the indexes it used. docs/performance.md holds the output.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BENCH_DB = os.environ.get("QUERY_BENCH_DB", "fleetwatch_bench_query")  # as bench/query_api.py
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "collector_server.settings")
os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("UI_SPARKLINE_CACHE_SECONDS", "0")  # show the fleet's queries, not a cache hit

TABLES = re.compile(
    r"\b(monitoring_(sample|rollup_1m|rollup_5m|rollup_1h|series|host|rollupstate)|alerts_\w+|logs_\w+)\b"
)
INDEX = re.compile(r"(?:Index Only Scan|Index Scan|Bitmap Index Scan)(?: Backward)? (?:using|on) (\w+)")
EXECUTION = re.compile(r"Execution Time: ([\d.]+) ms")


def endpoints() -> list[tuple[str, str]]:
    end = int(time.time())
    day, six_hours, hour = end - 24 * 3600, end - 6 * 3600, end - 3600
    promql_range = f"start={six_hours}&end={end}&step=60"
    return [
        ("seed", "/api/v1/monitoring/metrics/system?minutes=60&host=host-000"),
        ("seed", "/api/v1/monitoring/metrics/system?minutes=360&host=host-000"),
        ("seed", "/api/v1/monitoring/metrics/system?minutes=1440&host=host-000"),
        ("seed", "/api/v1/monitoring/metrics/summary?hours=24"),
        ("seed", "/api/v1/monitoring/dashboard/overview"),
        ("seed", "/api/v1/monitoring/hosts"),
        (
            "query",
            f"/api/v1/monitoring/query?metric=system_cpu_usage_percent&start={day}&end={end}&step=5m&by=host",
        ),
        (
            "query",
            f"/api/v1/monitoring/query?metric=system_network_bytes_sent_total&agg=rate&start={six_hours}&step=1m",
        ),
        (
            "query",
            f"/api/v1/monitoring/query?metric=system_cpu_usage_percent&agg=p95&start={six_hours}&step=10m",
        ),
        ("prometheus", f"/prometheus/api/v1/query?query=avg(system_cpu_usage_percent)&time={end}"),
        (
            "prometheus",
            f"/prometheus/api/v1/query_range?query=avg+by+(host)(system_cpu_usage_percent)&{promql_range}",
        ),
        (
            "prometheus",
            "/prometheus/api/v1/query_range?query=sum(rate(system_network_bytes_sent_total[5m]))"
            f"&{promql_range}",
        ),
        ("prometheus", f"/prometheus/api/v1/series?match[]=system_cpu_usage_percent&start={hour}&end={end}"),
        ("prometheus", "/prometheus/api/v1/labels"),
        ("ui", "/ui/api/fleet?range=1h&width=100"),
        ("ui", "/ui/api/chart?chart=cpu&host=host-000&range=1h&width=600"),
        ("ui", "/ui/api/chart?chart=cpu&host=host-000&range=7d&width=600"),
        ("ui", "/ui/api/chart?chart=network&host=host-000&range=24h&width=600"),
        ("ui", "/ui/api/chart?metric=system_cpu_usage_percent&by=host&range=6h&width=600"),
    ]


def record(client, path: str) -> tuple[int, list[tuple[str, object]]]:
    from django.db import connection

    statements: list[tuple[str, object]] = []

    def wrapper(execute, sql, params, many, context):
        if (
            not many
            and TABLES.search(sql)
            and not sql.lstrip().upper().startswith(("INSERT", "UPDATE", "SET"))
        ):
            statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        status = client.get(path).status_code
    return status, statements


def explain(sql: str, params: object) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def _general(index: str) -> str:
    """A partition's index under its parent's name: monitoring_sample_p20261201_series_id_ts_idx ->
    monitoring_sample_p*_series_id_ts_idx."""
    return re.sub(r"_p\d{6,8}_", "_p*_", index)


def compact(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip()


def shorten(text: str) -> str:
    """Long literal arrays (the 100 or 300 series ids) as their first ids and a count."""

    def short(match: re.Match) -> str:
        items = match.group(1).split(",")
        if len(items) <= 6:
            return match.group(0)
        return "'{" + ",".join(items[:4]) + f",... {len(items)} items" + "}'"

    return re.sub(r"'\{([^}]*)\}'", short, text)


def main() -> None:
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.test import Client

    client = Client()
    client.force_login(User.objects.get(username="bench"))
    for _, path in endpoints():  # warm-up: caches, first connection
        client.get(path)
    print("| area | endpoint | status | statements | Σ execution ms | indexes used |")
    print("|---|---|---|---|---|---|")
    sections = []
    for area, path in endpoints():
        status, statements = record(client, path)
        plans = []
        for sql, params in statements:
            plan = shorten(explain(sql, params))
            found = EXECUTION.search(plan)
            executed = "\n".join(line for line in plan.splitlines() if "never executed" not in line)
            used = sorted({_general(name) for name in INDEX.findall(executed)})
            plans.append((sql, plan, float(found.group(1)) if found else 0.0, used))
        indexes = sorted({name for *_, used in plans for name in used})
        shown = path.split("?")[0] + ("?" + path.split("?")[1] if "?" in path else "")
        total = sum(p[2] for p in plans)
        print(f"| {area} | `{shown}` | {status} | {len(plans)} | {total:.1f} | {', '.join(indexes) or '-'} |")
        sections.append((area, shown, plans))
    for area, shown, plans in sections:
        print(f"\n#### {area}: `{shown}`\n")
        for n, (sql, plan, ms, used) in enumerate(plans, 1):
            print(f"{n}. {ms:.1f} ms, indexes: {', '.join(used) or 'none (no index needed or none used)'}")
            print(
                f"\n<details><summary>SQL and plan</summary>\n\n```sql\n{compact(sql)}\n```\n\n```\n{plan}\n```\n</details>\n"
            )


if __name__ == "__main__":
    main()
