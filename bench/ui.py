"""UI speed: time to first chart and full render of the fleet and host pages, p95 of chart data.

Seeds its own database (fleetwatch_bench_ui, dropped at the end): HOSTS hosts with an hour of
15 s samples of the fleet's sparkline metrics, and one host with 7 days of 1 minute rollups of
every host chart's metrics. Starts the server, loads / (range 1h) and /hosts/host-000/ (range 7d)
LOADS times each in headless Debian chromium (Playwright), and times every chart-data request.

    .venv/bin/python bench/ui.py [--hosts 100] [--loads 5] [--requests 100]

Goal: every page fully drawn within 1 s, chart data p95 <= 50 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import benchdb  # bench/ is the script directory, so it is on sys.path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "fleetwatch_bench_ui"
os.environ.update(
    DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}",
    SECRET_KEY="bench",
    DEBUG="false",
    ALLOWED_HOSTS="127.0.0.1,localhost",
    DJANGO_SETTINGS_MODULE="collector_server.settings",
    LOG_LEVEL="WARNING",
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1",
    STATIC_ROOT="/tmp/fleetwatch-bench-ui-static",  # collected, served by WhiteNoise as in production
)
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "bench-password-1"
FLEET = [  # (metric, kind, labels) one hour of 15 s samples for every host
    ("system_cpu_usage_percent", "gauge", {}),
    ("system_memory_usage_percent", "gauge", {}),
    ("system_disk_usage_percent", "gauge", {"mountpoint": "/"}),
    ("system_network_bytes_recv_total", "counter", {}),
    ("system_network_bytes_sent_total", "counter", {}),
]
WEEK = [  # seven days of 1 minute rollups for host-000
    *[("system_cpu_usage_percent", "gauge", {"core": str(c)}) for c in range(4)],
    ("system_load1", "gauge", {}),
    ("system_load5", "gauge", {}),
    ("system_load15", "gauge", {}),
    ("system_swap_usage_percent", "gauge", {}),
    ("system_disk_read_bytes_total", "counter", {"device": "sda"}),
    ("system_disk_written_bytes_total", "counter", {"device": "sda"}),
    ("system_network_bytes_recv_total", "counter", {"interface": "eth0"}),
    ("system_network_bytes_sent_total", "counter", {"interface": "eth0"}),
    ("system_connections_active", "gauge", {}),
    ("system_processes", "gauge", {}),
]


def series_id(cursor, name: str, kind: str, labels: dict, host_id: int) -> int:
    key = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    cursor.execute(
        "INSERT INTO monitoring_series (name, kind, labels, labels_key, host_id, created_at) "
        "VALUES (%s, %s, %s, %s, %s, now()) RETURNING id",
        [name, kind, json.dumps(labels), key, host_id],
    )
    return cursor.fetchone()[0]


def week_of_rollups(cursor, sid: int, kind: str) -> None:
    """Seven days of 1 minute rollups, ending where the raw samples begin."""
    cursor.execute(
        "INSERT INTO monitoring_rollup_1m SELECT %s, date_trunc('minute', now()) - k * interval '1 min', "
        "40 + 20 * sin(k / 90.0), 60 + 20 * sin(k / 90.0), 4 * (50 + 20 * sin(k / 90.0)), 4, "
        "50 + 20 * sin(k / 90.0), CASE WHEN %s THEN 60000.0 END FROM generate_series(61, 10140) k",
        [sid, kind == "counter"],
    )


def seed(hosts: int) -> str:
    """Seed the bench database; return the API token of the bench user."""
    from datetime import UTC, datetime, timedelta

    from django.contrib.auth.models import User
    from django.db import connection

    from collector_server.monitoring import partitions
    from collector_server.monitoring.models import Host, RollupState

    now = datetime.now(UTC)
    day = (now - timedelta(days=8)).date()
    while day <= now.date():
        for spec in partitions.REGISTRY.values():
            partitions.ensure_partition(spec, day)
        day += timedelta(days=1)
    from tests.members import issue_token, member

    user = member(User.objects.create_user("bench", password=PASSWORD), "operator")
    token = issue_token(user, "operator")
    with connection.cursor() as cursor:
        for h in range(hosts):
            name = f"host-{h:03d}"
            host = Host.objects.create(
                agent_id=f"agent-{name}", hostname=name, last_seen=now, agent_version="1"
            )
            ids = []
            for metric, kind, extra in FLEET:
                sid = series_id(cursor, metric, kind, {"host": name, **extra}, host.pk)
                ids.append((sid, kind))
                value = "k * 15000.0" if kind == "counter" else f"50 + 30 * sin(k / 20.0 + {h})"
                cursor.execute(
                    "INSERT INTO monitoring_sample SELECT %s, now() - interval '1 hour' + k * interval '15 s', "
                    f"{value} FROM generate_series(0, 239) k",
                    [sid],
                )
            if h == 0:
                ids += [(series_id(cursor, m, k, {"host": name, **x}, host.pk), k) for m, k, x in WEEK]
                for sid, kind in ids:
                    week_of_rollups(cursor, sid, kind)
        # The rollup job runs every minute: roll the fleet's hour up as it would have (host-000's
        # seven days already are), leaving the last minutes to the raw tail.
        cursor.execute(
            """
            INSERT INTO monitoring_rollup_1m
            SELECT series_id, date_trunc('minute', ts), min(value), max(value), sum(value), count(*),
                   (array_agg(value ORDER BY ts DESC))[1],
                   CASE WHEN max(value) > min(value) THEN max(value) - min(value) END
            FROM monitoring_sample WHERE ts < date_trunc('minute', now()) - interval '1 min'
            GROUP BY 1, 2 ON CONFLICT DO NOTHING
            """
        )
        done = now.replace(second=0, microsecond=0) - timedelta(minutes=1)
        # ... and the 1 h rollups the same job computes from the minutes (7-day charts read them).
        from alerting_worker.maintenance import rollups

        cursor.execute(rollups.ROLLUP_1H_SQL, {"start": now - timedelta(days=8), "end": done})
        if hasattr(rollups, "ROLLUP_5M_SQL"):
            cursor.execute(rollups.ROLLUP_5M_SQL, {"start": now - timedelta(days=8), "end": done})
        cursor.execute("ANALYZE")
    for level in ("1m", "5m", "1h"):
        RollupState.objects.update_or_create(level=level, defaults={"done_until": done})
    return token


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(base: str) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(base + "/api/v1/monitoring/health?scope=live", timeout=2)
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("the server did not start")


def page_times(page, url: str, first: str, full: str, loads: int) -> tuple[float, float]:
    firsts, fulls = [], []
    for _ in range(loads):
        page.goto(url, wait_until="commit")
        page.wait_for_function(first, timeout=30_000)
        firsts.append(page.evaluate("performance.now()"))
        page.wait_for_function(full, timeout=30_000)
        fulls.append(page.evaluate("performance.now()"))
    return statistics.median(firsts), statistics.median(fulls)


def api_p95(base: str, paths: list[str], requests: int, token: str) -> tuple[float, float, float]:
    """Return the p95, median and maximum of `requests` sequential GETs of `paths` in turn."""
    durations = []
    for i in range(requests):
        request = urllib.request.Request(
            base + paths[i % len(paths)], headers={"Authorization": "Token " + token}
        )
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
        durations.append((time.perf_counter() - started) * 1000)
    return statistics.quantiles(durations, n=20)[-1], statistics.median(durations), max(durations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--seed-only", action="store_true", help="seed the database, keep it and stop")
    args = parser.parse_args()
    benchdb.create(BENCH_DB)
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)
    started = time.perf_counter()
    token = seed(args.hosts)
    print(f"seeded {args.hosts} hosts in {time.perf_counter() - started:.1f} s")
    if args.seed_only:
        return
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "collector_server", "server", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_up(base)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(base + "/login/?next=/")
            page.fill("#id_username", "bench")
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_url(base + "/")
            fleet = page_times(
                page,
                base + "/?range=1h",
                "document.querySelector('#fleet svg.spark')",
                f"document.querySelectorAll('#fleet tbody tr svg.spark').length >= {args.hosts * 4}",
                args.loads,
            )
            host = page_times(
                page,
                base + "/hosts/host-000/?range=7d",
                "document.querySelector('figure.chart[data-drawn] canvas')",
                "Array.from(document.querySelectorAll('figure.chart')).every(f => f.dataset.drawn)",
                args.loads,
            )
            browser.close()
        from collector_server.ui.charts import HOST_CHARTS

        charts = [f"/ui/api/chart?chart={c.name}&host=host-000&range=7d&width=600" for c in HOST_CHARTS]
        charts_1h = [f"/ui/api/chart?chart={c.name}&host=host-001&range=1h&width=600" for c in HOST_CHARTS]
        p95_week = api_p95(base, charts, args.requests, token)
        p95_hour = api_p95(base, charts_1h, args.requests, token)
        # As deployed: fleetwatch-scheduler runs collector_server.ui.fleet.refresh_default_sparklines
        # every 5 s on a worker; here a thread of the bench does it against the same database and Redis.
        import threading

        from collector_server.ui.fleet import refresh_default_sparklines

        stop = threading.Event()

        def refresher() -> None:
            while not stop.is_set():
                refresh_default_sparklines()
                stop.wait(5)

        api_p95(base, ["/ui/api/fleet?range=1h&width=100"], 2, token)  # a page view marks the organisation
        thread = threading.Thread(target=refresher, daemon=True)
        thread.start()
        time.sleep(1)
        try:
            p95_fleet = api_p95(
                base, ["/ui/api/fleet?range=1h&width=100"], max(20, args.requests // 5), token
            )
        finally:
            stop.set()
            thread.join(timeout=30)
    finally:
        server.terminate()
        server.wait(timeout=20)
        benchdb.drop(BENCH_DB)
    print(
        f"/ ({args.hosts} hosts, 1h): first chart {fleet[0]:.0f} ms, fully drawn {fleet[1]:.0f} ms (median of {args.loads})"
    )
    print(
        f"/hosts/host-000/ (7 days): first chart {host[0]:.0f} ms, fully drawn {host[1]:.0f} ms (median of {args.loads})"
    )
    print(
        "chart data p95 / median / max (ms): "
        f"host charts 7d {p95_week[0]:.1f} / {p95_week[1]:.1f} / {p95_week[2]:.1f}, "
        f"host charts 1h {p95_hour[0]:.1f} / {p95_hour[1]:.1f} / {p95_hour[2]:.1f}, "
        f"fleet {p95_fleet[0]:.1f} / {p95_fleet[1]:.1f} / {p95_fleet[2]:.1f} "
        f"(sparklines cached {os.environ.get('UI_SPARKLINE_CACHE_SECONDS', '10')} s, kept computed by the refresh job)"
    )


if __name__ == "__main__":
    main()
