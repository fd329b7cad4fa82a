"""Log rule evaluation cost: one statement for all log_count rules against one query per rule.

Fills logs_entry with ROWS records spread over the last HOURS hours (INSERT ... SELECT
generate_series; then the indexes the rules use: (level_no, ts), (service, ts), (host, ts) and
the trigram GIN), defines 20 log_count rules (level + service per host, min_level per host,
regex patterns per service, CRITICAL on one host over an hour), and times:

- the one statement the evaluation cycle runs (``evaluate_log_batch``: a UNION ALL arm per rule),
- the same rules one query each (what the cycle would do without batching),

printing medians and the ratio, and the indexes each plan uses (EXPLAIN).

    .venv/bin/python bench/log_rules.py [--rows 1000000] [--hours 6] [--runs 7]

It uses its own database (fleetwatch_bench_log_rules, created and dropped). About a minute.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import benchdb  # bench/ is the script directory, so it is on sys.path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "fleetwatch_bench_log_rules"
os.environ.update(
    DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}",
    SECRET_KEY="bench",
    DJANGO_SETTINGS_MODULE="collector_server.settings",
    LOG_LEVEL="WARNING",
    LOG_RETENTION_DAYS="7",
)
KEEP_INDEXES = (
    "logs_entry_level_ts",
    "logs_entry_service_ts",
    "logs_entry_host_ts",
    "logs_entry_message_trgm",
)
SERVICES = ["api", "billing", "worker", "auth", "search"]
PATTERNS = [
    "timeout after 4[0-9]{3}ms",
    "connection refused",
    "slow query took 49",
    "user 42 logged",
    "items/9999",
]
FILL_SQL = """
INSERT INTO logs_entry (ts, host, service, level, level_no, message, logger, attrs)
SELECT
    %(start)s::timestamptz + (i * %(step)s) * interval '1 microsecond',
    'web-' || (i %% 20),
    (ARRAY['api','billing','worker','auth','search'])[1 + i %% 5],
    (ARRAY['INFO','INFO','DEBUG','WARNING','ERROR','INFO','CRITICAL','INFO'])[1 + i %% 8],
    (ARRAY[20,20,10,30,40,20,50,20])[1 + i %% 8],
    CASE i %% 8
        WHEN 0 THEN 'GET /api/v1/items/' || (i %% 99991) || ' completed in ' || (i %% 4999) || 'ms'
        WHEN 1 THEN 'user ' || (i %% 5003) || ' logged in from 10.0.' || (i %% 251) || '.' || (i %% 241)
        WHEN 2 THEN 'cache hit for key item:' || (i %% 99989)
        WHEN 3 THEN 'slow query took ' || (i %% 4999) || 'ms on table orders'
        WHEN 4 THEN 'database timeout after ' || (i %% 4999) || 'ms talking to db-' || (i %% 7)
        WHEN 5 THEN 'POST /api/v1/generate status 200 size ' || (i %% 99991) || ' bytes'
        WHEN 6 THEN 'payment provider unreachable: connection refused (attempt ' || (i %% 5) || ')'
        ELSE 'job ' || i || ' finished with ' || (i %% 3) || ' retries'
    END,
    'app.' || (ARRAY['api','billing','worker','auth','search'])[1 + i %% 5],
    '{}'::jsonb
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS i
"""


def sql(statement: str, args: Any = None) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, args)
        return cursor.fetchall() if cursor.description else []


def setup() -> None:
    benchdb.create(BENCH_DB)


def teardown() -> None:
    benchdb.drop(BENCH_DB)


def fill(rows: int, hours: float, now: datetime) -> None:
    """Load `rows` records over the `hours` before `now`, then build the indexes the rules use."""
    from collector_server.logs import writer

    start = now - timedelta(hours=hours)
    writer.ensure_days(range(int(start.timestamp() // 86400), int(now.timestamp() // 86400) + 1))
    indexes = dict(sql("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'logs_entry'"))
    for name in indexes:
        if name != "logs_entry_pkey":
            sql(f'DROP INDEX "{name}"')
    # Since logs/0004 the trigram index is built per closed hour and day by a maintenance job, not
    # on the parent; this bench indexes its whole load at once, as before.
    indexes["logs_entry_message_trgm"] = (
        "CREATE INDEX logs_entry_message_trgm ON logs_entry USING gin (message gin_trgm_ops)"
    )
    step = int(hours * 3600 * 1e6 / rows)
    began = time.perf_counter()
    for lo in range(0, rows, 500_000):
        sql(FILL_SQL, {"start": start, "step": step, "lo": lo, "hi": min(rows, lo + 500_000) - 1})
    for name in KEEP_INDEXES:
        sql(indexes[name].replace(" ON ONLY ", " ON "))
    sql("ANALYZE logs_entry")
    print(f"    loaded {rows:,} records over {hours:g} h and built {len(KEEP_INDEXES)} indexes in "
          f"{time.perf_counter() - began:.1f} s")  # fmt: skip


def rules() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    out += [{"level": "ERROR", "service": s, "group_by": ["host"], "window": 300} for s in SERVICES]
    out += [{"min_level": "WARNING", "service": s, "group_by": ["host"], "window": 600} for s in SERVICES]
    out += [{"pattern": p, "group_by": ["service"], "window": 900} for p in PATTERNS]
    out += [{"level": "CRITICAL", "host": f"web-{i}", "window": 3600} for i in range(5)]
    return out


def single_scan(queries: list[dict[str, Any]], now: datetime) -> list[tuple]:
    """The alternative design, for comparison: one scan, one FILTER per rule, GROUPING SETS."""
    from collector_server.alerts import log_query

    columns = [c for c in log_query.GROUP_COLUMNS if any(c in x["group_by"] for x in queries)]
    sets = dict.fromkeys("(" + ", ".join(c for c in columns if c in x["group_by"]) + ")" for x in queries)
    parts = [log_query._conditions(x) for x in queries]
    starts = [now - timedelta(seconds=x["window"]) for x in queries]
    statement = (
        f"SELECT {', '.join(columns)}, GROUPING({', '.join(columns)}), "
        + ", ".join(f"count(*) FILTER (WHERE {c})" for c, _ in parts)
        + f" FROM logs_entry WHERE ts >= %s AND ts < %s AND ({' OR '.join(f'({c})' for c, _ in parts)})"
        + f" GROUP BY GROUPING SETS ({', '.join(sets)})"
    )
    args = [a for start, (_, xs) in zip(starts, parts, strict=True) for a in (start, *xs)]
    return sql(statement, [*args, min(starts), now, *args])


def interleaved(fns: dict[str, Any], runs: int) -> tuple[dict[str, float], dict[str, Any]]:
    """Median ms of each function, run in turn so that load on the shared machine hits them alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    results: dict[str, Any] = {}
    for _ in range(runs):
        for name, fn in fns.items():
            began = time.perf_counter()
            results[name] = fn()
            times[name].append((time.perf_counter() - began) * 1000)
    return {name: statistics.median(t) for name, t in times.items()}, results


def plan_indexes(statement: str) -> str:
    plan = sql("EXPLAIN (FORMAT JSON) " + statement)[0][0]
    text = json.dumps(plan)
    names = sorted(
        {re.sub(r"^logs_entry_p\d{8}_", "", n) for n in re.findall(r'"Index Name": "([^"]+)"', text)}
    )
    nodes = sorted(
        set(re.findall(r'"Node Type": "([^"]+)"', text)) & {"Seq Scan", "Bitmap Heap Scan", "Index Scan"}
    )
    return f"{', '.join(nodes)}; indexes: {', '.join(names) or 'none'}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--hours", type=float, default=6)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    began = time.perf_counter()
    print(f"log rule evaluation; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    setup()
    try:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from collector_server.alerts import log_query

        now = datetime.now(UTC).replace(microsecond=0)
        fill(args.rows, args.hours, now)
        queries = [log_query.LogCountQuery().validate(r) for r in rules()]
        medians, results = interleaved(
            {
                "statement": lambda: log_query.evaluate_log_batch(queries, now),
                "per_rule": lambda: [log_query.evaluate_log_batch([x], now)[0] for x in queries],
                "scan": lambda: single_scan(queries, now),
            },
            args.runs,
        )
        together, alone = results["statement"], results["per_rule"]
        same = [{k: g.value for k, g in r.groups.items()} for r in together] == [
            {k: g.value for k, g in r.groups.items()} for r in alone
        ]
        counted = sum(g.value or 0 for r in together for g in r.groups.values())
        print(
            f"    {len(queries)} rules, {counted:,.0f} matching records counted; same values both ways: {same}"
        )
        print(f"    median of {args.runs} runs (the three run in turn):")
        table = [
            ("one statement, a UNION ALL arm per rule (the evaluation cycle)", medians["statement"]),
            (f"one query per rule ({len(queries)} queries)", medians["per_rule"]),
            ("one scan, a FILTER per rule, GROUPING SETS (not used)", medians["scan"]),
        ]
        for label, ms in table:
            print(f"      {label:<64} {ms:8.1f} ms")
        print(f"      per-rule / one statement: {medians['per_rule'] / medians['statement']:.2f}x; "
              f"one scan / one statement: {medians['scan'] / medians['statement']:.2f}x")  # fmt: skip
        print("    plans:")
        with CaptureQueriesContext(connection) as captured:
            log_query.evaluate_log_batch(queries, now)
            for index in (0, 5, 10, 15):
                log_query.evaluate_log_batch([queries[index]], now)
        scans = [q["sql"] for q in captured.captured_queries if "FROM logs_entry" in q["sql"]]
        for label, statement in zip(("one statement", "level+service", "min_level+service", "pattern", "host+level"),
                                    scans, strict=True):  # fmt: skip
            print(f"      {label:<18} {plan_indexes(statement)}")
    finally:
        teardown()
    print(f"total {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
