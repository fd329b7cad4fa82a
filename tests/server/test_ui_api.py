"""The UI's chart-data endpoints and page shells (the browser tests are in tests/ui)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from collector_server.alerts.models import Alert, AlertEvent
from tests.members import member
from tests.server.conftest import insert_samples, make_host, make_series

CHART = "/ui/api/chart"


@pytest.fixture
def web1(db):
    """web-1 with an hour of CPU, memory and swap samples every 5 s."""
    host = make_host("web-1", labels={"role": "web"}, agent_version="1.2.3")
    now = timezone.now()
    for name, value in (
        ("system_cpu_usage_percent", 40.0),
        ("system_memory_usage_percent", 60.0),
        ("system_swap_usage_percent", 5.0),
    ):
        insert_samples(make_series(host, name), [(now - timedelta(seconds=5 * k), value) for k in range(720)])
    return host


def test_chart_is_downsampled_to_the_pixel_width(api, web1):
    narrow = api.get(CHART, {"chart": "cpu", "host": "web-1", "range": "1h", "width": "60"}).json()["data"]
    assert narrow["step"] == 60
    assert 55 <= len(narrow["timestamps"]) <= 61
    wide = api.get(CHART, {"chart": "cpu", "host": "web-1", "range": "1h", "width": "600"}).json()["data"]
    assert wide["step"] == 10  # never finer than the agent's interval
    assert 350 <= len(wide["timestamps"]) <= 361
    assert {v for v in wide["series"][0]["values"] if v is not None} == {40.0}
    assert wide["source"] == "raw"


def test_the_lines_of_a_chart_share_one_time_axis(api, web1):
    data = api.get(CHART, {"chart": "memory", "host": "web-1", "width": "300"}).json()["data"]
    assert [s["label"] for s in data["series"]] == ["memory", "swap"]
    assert all(len(s["values"]) == len(data["timestamps"]) for s in data["series"])
    assert data["timestamps"] == sorted(data["timestamps"])


def test_a_zoomed_range_reads_start_and_end(api, web1):
    end = int(timezone.now().timestamp())
    body = api.get(CHART, {"chart": "cpu", "host": "web-1", "start": end - 600, "end": end, "width": 600})
    data = body.json()["data"]
    assert data["start"] == end - 600 and data["step"] == 10
    assert all(end - 610 <= t <= end for t in data["timestamps"])


def test_markers_are_the_hosts_alert_firings_in_the_range(api, web1):
    now = timezone.now()
    for host in ("web-1", "web-2"):
        alert = Alert.objects.create(
            name=f"hot {host}", labels={"host": host}, labels_key=f"host={host}", severity="high",
            state=Alert.FIRING, started_at=now, updated_at=now,
        )  # fmt: skip
        AlertEvent.objects.create(alert=alert, to_state=Alert.FIRING, at=now - timedelta(minutes=5))
    data = api.get(CHART, {"chart": "cpu", "host": "web-1"}).json()["data"]
    assert [m["name"] for m in data["markers"]] == ["hot web-1"]


def test_an_ad_hoc_chart_groups_by_labels(api, web1):
    make_host("web-2")
    data = api.get(CHART, {"metric": "system_cpu_usage_percent", "agg": "max", "by": "host"}).json()["data"]
    assert [s["label"] for s in data["series"]] == ["host=web-1"]


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"chart": "nope", "host": "web-1"}, "chart"),
        ({"chart": "cpu"}, "host"),
        ({"chart": "cpu", "host": "web-1", "width": "5"}, "width"),
        ({"chart": "cpu", "host": "web-1", "width": "wide"}, "width"),
        ({"chart": "cpu", "host": "web-1", "range": "2y"}, "range"),
        ({"chart": "cpu", "host": "web-1", "start": "1700000000", "end": "1600000000"}, "start"),
        ({"chart": "cpu", "host": "web-1", "start": "yesterday"}, "start"),
        ({"metric": "system_cpu_usage_percent", "match[]": "host=~(oops"}, "match[]"),
        ({"metric": "system_cpu_usage_percent", "agg": "median"}, "agg"),
        ({}, "metric"),
    ],
)
def test_bad_chart_parameters_are_a_400_naming_the_parameter(api, web1, params, name):
    response = api.get(CHART, params)
    assert response.status_code == 400, response.content
    assert name in response.json()["detail"]


def test_fleet_lists_every_host_with_state_alerts_and_sparklines(api, web1):
    make_host("db-1", seen_ago=timedelta(hours=2))
    now = timezone.now()
    Alert.objects.create(
        name="hot", labels={"host": "web-1"}, labels_key="host=web-1", severity="high",
        state=Alert.FIRING, started_at=now, updated_at=now,
    )  # fmt: skip
    data = api.get("/ui/api/fleet", {"range": "1h", "width": "100"}).json()["data"]
    hosts = {h["hostname"]: h for h in data["hosts"]}
    assert hosts["web-1"]["state"] == "up" and hosts["db-1"]["state"] == "down"
    assert hosts["web-1"]["firing"] == 1 and hosts["db-1"]["firing"] == 0
    assert hosts["web-1"]["labels"] == {"role": "web"} and hosts["web-1"]["agent_version"] == "1.2.3"
    assert data["step"] == 60  # sparklines read the minute rollups
    assert 55 <= len(hosts["web-1"]["sparklines"]["cpu"]) <= 61
    assert hosts["db-1"]["sparklines"] == {}


def test_autocomplete_lists_metric_names_and_label_values(api, web1):
    names = [m["name"] for m in api.get("/ui/api/metric-names", {"prefix": "usage"}).json()["data"]]
    assert names == ["system_cpu_usage_percent", "system_memory_usage_percent", "system_swap_usage_percent"]
    labels = api.get("/ui/api/labels", {"metric": "system_cpu_usage_percent"}).json()["data"]["labels"]
    assert labels == {"host": ["web-1"]}


def test_every_page_needs_a_login_and_renders(db, web1):
    assert Client().get("/alerts/")["Location"].startswith("/login/?next=/alerts/")
    client = Client()
    client.force_login(member(User.objects.create_user("someone"), "viewer"))
    pages = (
        "/",
        "/hosts/web-1/",
        "/alerts/",
        "/logs/",
        "/requests/abc/",
        "/explore/",
        "/endpoints/",
        "/rules/new/",
    )
    for path in pages:
        assert client.get(path).status_code == 200, path
    assert client.get("/hosts/nope/").status_code == 404
    assert client.get("/favicon.ico")["Location"].endswith("ui/favicon.svg")


def test_only_operators_get_the_action_dialogs(db, web1):
    viewer, operator = Client(), Client()
    viewer.force_login(member(User.objects.create_user("viewer-1"), "viewer"))
    operator.force_login(member(User.objects.create_user("operator-1"), "operator"))
    seen = viewer.get("/alerts/").content.decode()
    assert 'data-can-operate="false"' in seen and "<dialog" not in seen and "(viewer)" in seen
    acted = operator.get("/alerts/").content.decode()
    assert 'data-can-operate="true"' in acted and 'id="ack-dialog"' in acted


def test_pressure_and_top_process_charts_show_only_for_hosts_with_those_series(db, web1):
    client = Client()
    client.force_login(member(User.objects.create_user("someone"), "viewer"))
    page = client.get("/hosts/web-1/").content.decode()
    assert 'data-chart="cpu"' in page
    assert 'data-chart="pressure"' not in page and 'data-chart="top_cpu"' not in page
    make_series(web1, "system_pressure_io_waiting_seconds_total")
    make_series(web1, "system_process_memory_bytes", process="postgres")
    page = client.get("/hosts/web-1/").content.decode()
    assert 'data-chart="pressure"' in page and 'data-chart="top_memory"' in page
    assert 'data-chart="gpu_util"' not in page


def test_pressure_chart_is_the_rate_of_the_waiting_counters(api, web1):
    now = timezone.now()
    series = make_series(web1, "system_pressure_cpu_waiting_seconds_total", kind="counter")
    # 0.25 s of waiting per second of wall time
    insert_samples(series, [(now - timedelta(seconds=10 * k), 1000.0 - 2.5 * k) for k in range(60)])
    data = api.get(CHART, {"chart": "pressure", "host": "web-1", "range": "1h", "width": "60"}).json()["data"]
    cpu = next(s for s in data["series"] if s["label"] == "cpu")
    rates = [round(v, 3) for v in cpu["values"] if v is not None]
    # every full step is 0.25; the steps at the ends of the 10 minutes of data see part of it
    assert max(rates) == 0.25 and rates.count(0.25) >= len(rates) - 2
