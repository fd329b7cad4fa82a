"""GET hosts and hosts/{id}: up/down, labels, series count, filters."""

from __future__ import annotations

from datetime import timedelta

from tests.server.conftest import make_host, make_series

URL = "/api/v1/monitoring/hosts"


def test_host_list_shows_up_down_and_series_count(api, db):
    web = make_host("web-1", labels={"env": "prod"}, agent_version="1.2.0")
    make_series(web, "system_load1")
    make_series(web, "system_load5")
    make_host("old-1", seen_ago=timedelta(hours=1))
    body = api.get(URL).json()
    assert body["success"] is True
    assert body["count"] == 2
    by_name = {h["hostname"]: h for h in body["data"]}
    assert by_name["web-1"]["is_up"] is True
    assert by_name["web-1"]["series_count"] == 2
    assert by_name["web-1"]["labels"] == {"env": "prod"}
    assert by_name["web-1"]["agent_version"] == "1.2.0"
    assert by_name["old-1"]["is_up"] is False
    assert by_name["old-1"]["series_count"] == 0


def test_hosts_filter_by_up_and_hostname(api, db):
    make_host("web-1")
    make_host("web-2", seen_ago=timedelta(hours=1))
    make_host("db-1")
    down = api.get(URL, {"up": "false"}).json()
    assert [h["hostname"] for h in down["data"]] == ["web-2"]
    up = api.get(URL, {"up": "true"}).json()
    assert [h["hostname"] for h in up["data"]] == ["db-1", "web-1"]
    named = api.get(URL, {"hostname": "db-1"}).json()
    assert [h["hostname"] for h in named["data"]] == ["db-1"]
    part = api.get(URL, {"hostname__icontains": "WEB"}).json()
    assert part["count"] == 2


def test_host_detail_and_unknown_host_is_404(api, db):
    host = make_host("web-1")
    body = api.get(f"{URL}/{host.id}").json()
    assert body == {"success": True, "data": body["data"]}
    assert body["data"]["agent_id"] == "agent-web-1"
    missing = api.get(f"{URL}/{host.id + 1000}")
    assert missing.status_code == 404
    assert missing.json()["success"] is False


def test_bad_up_filter_is_a_400_naming_it(api, db):
    response = api.get(URL, {"up": "maybe"})
    assert response.status_code == 400
    assert "up" in response.json()["detail"]
