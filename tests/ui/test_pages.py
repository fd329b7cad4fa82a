"""The web UI in a real browser against a real stack: pages, charts, actions, logs, roles."""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path

import pytest

from collector_server.localstack import Stack
from tests.e2e.test_logs_pipeline import run_app, search, wait_for
from tests.members import issue_token
from tests.ui.conftest import login

# django_db (not transaction=True): the data of the module fixtures must outlive each test.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db]
HOST = socket.gethostname()


def api(stack: Stack, token: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.port}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.fixture(scope="module")
def data(ui_stack: Stack, django_db_blocker) -> dict:
    """Logs and API metrics from two monitored apps, firing and pending alerts, a rule."""
    from django.contrib.auth import get_user_model

    from collector_server.alerts.models import Alert, AlertRule

    with django_db_blocker.unblock():
        token = issue_token(get_user_model().objects.get(username="operator"), "operator")
    run_app("wsgi", ui_stack.env, ["/sku/1", "/fail/77", "/sku/2"], ["req-w1", "req-w2", "req-w3"])
    run_app("django", ui_stack.env, ["/checkout/A1", "/checkout/B2"], ["req-d1", "req-d2"])
    alerts = {}
    for name in ("disk-full", "cpu-hot", "mem-hot", "late-ack"):
        status, body = api(
            ui_stack,
            token,
            "POST",
            "/api/v1/monitoring/alerts",
            {"name": name, "severity": "high", "labels": {"host": HOST}, "summary": f"{name} on {HOST}"},
        )
        assert status == 201, body
        alerts[name] = body["data"]["id"]
    with django_db_blocker.unblock():
        rule = AlertRule(
            name="cpu high",
            query={"metric": "system_cpu_usage_percent", "window": 300, "group_by": ["host"]},
            threshold=90,
        )
        rule.full_clean()
        rule.save()
        # Always breached but for an hour first: the scheduler's evaluation keeps it pending.
        slow = AlertRule(
            name="load-rising",
            query={"metric": "system_load1", "window": 300, "group_by": ["host"]},
            comparison=">=",
            threshold=-1,
            for_seconds=3600,
        )
        slow.full_clean()
        slow.save()
        pending = wait_for(
            lambda: Alert.objects.filter(rule=slow, state=Alert.PENDING).first(), lambda a: a is not None
        )
        assert pending is not None
        alerts["load-rising"] = pending.pk
    rows = wait_for(lambda: search(ui_stack, token, request_id="req-w2"), lambda rows: len(rows) >= 2)
    assert len(rows) >= 2
    return {"token": token, "alerts": alerts, "rule": rule.pk}


class Page:
    """A page of one browser context that records console errors."""

    def __init__(self, context, stack: Stack, output: Path) -> None:
        self.page = context.new_page()
        self.stack = stack
        self.output = output
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def open(self, path: str) -> None:
        self.page.goto(f"http://127.0.0.1:{self.stack.port}{path}")

    def charts_drawn(self) -> None:
        try:
            self.page.wait_for_function(
                "Array.from(document.querySelectorAll('figure.chart')).every(f => f.dataset.drawn)",
                timeout=30_000,
            )
        except Exception:
            self.shot("failed")
            states = self.page.eval_on_selector_all(
                "figure.chart", "fs => fs.map(f => f.outerHTML.slice(0, 400))"
            )
            raise AssertionError(f"charts not drawn: {self.errors} {states}") from None

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.output / f"{name}.png"), full_page=True)


def canvas_pixels(page, selector: str) -> int:
    """Count the non-transparent pixels of a chart's canvas."""
    return page.eval_on_selector(
        f"{selector} canvas",
        """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                  let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }""",
    )


def drawn_marks(page) -> list[str]:
    return page.eval_on_selector_all("figure.chart", "fs => fs.map(f => f.dataset.drawn || '')")


def redrawn(page, before: list[str]) -> None:
    """Wait until every chart of the page has been drawn again since `before`."""
    page.wait_for_function(
        "before => Array.from(document.querySelectorAll('figure.chart'))"
        ".every((f, i) => f.dataset.drawn && f.dataset.drawn !== before[i])",
        arg=before,
        timeout=30_000,
    )


@pytest.fixture(scope="module")
def operator(browser, ui_stack):
    context = login(browser, ui_stack, "operator")
    yield context
    context.close()


def test_every_page_renders_with_data_and_no_console_errors(operator, ui_stack, data, ui_output):
    p = Page(operator, ui_stack, ui_output)
    p.open("/")
    p.page.wait_for_selector(f"#fleet tr[data-host='{HOST}'] svg.spark")
    row = p.page.inner_text(f"#fleet tr[data-host='{HOST}']")
    assert "up" in row and "firing" in row
    # The badge fills in from its own request, which may finish after the fleet table's.
    p.page.wait_for_selector("#health.ok, #health.bad")
    assert "pipeline ok" in p.page.inner_text("#health")
    p.shot("fleet")

    p.open(f"/hosts/{HOST}/")
    p.charts_drawn()
    assert p.page.get_attribute("figure[data-chart=cpu]", "data-drawn") != "failed"
    assert canvas_pixels(p.page, "figure[data-chart=cpu]") > 500
    assert "alert firing" in p.page.inner_text("figure[data-chart=cpu] .note")  # markers
    p.page.wait_for_selector("#host-alerts tbody tr >> text=disk-full")
    p.shot("host")

    p.open("/alerts/")
    p.page.wait_for_selector("#alerts tr[data-alert]")
    p.shot("alerts")

    p.open("/logs/?range=1h")
    p.page.wait_for_selector("#logs tr.lvl-error")
    p.shot("logs")

    p.open("/explore/?metric=system_cpu_usage_percent&match[]=core%3D%22%22&agg=avg&by=host")
    p.charts_drawn()
    assert canvas_pixels(p.page, "#explore-chart") > 500
    assert HOST in p.page.inner_text("#explore-table")
    p.shot("explore")

    p.open("/endpoints/")
    p.charts_drawn()
    assert "/checkout/<str:order>" in p.page.inner_text("figure[data-chart=api_rate]")
    p.shot("endpoints")
    assert p.errors == []


def test_range_change_and_zoom_redraw_the_charts(operator, ui_stack, data, ui_output):
    p = Page(operator, ui_stack, ui_output)
    p.open(f"/hosts/{HOST}/")
    p.charts_drawn()
    before = drawn_marks(p.page)
    p.page.select_option("#range", "6h")
    redrawn(p.page, before)
    assert "range=6h" in p.page.url

    box = p.page.locator("figure[data-chart=cpu] .u-over").bounding_box()
    before = drawn_marks(p.page)
    y = box["y"] + box["height"] / 2
    p.page.mouse.move(box["x"] + box["width"] * 0.5, y)
    p.page.mouse.down()
    p.page.mouse.move(box["x"] + box["width"] + 30, y, steps=5)  # past the edge: up to now
    p.page.mouse.up()
    redrawn(p.page, before)
    assert "start=" in p.page.url and "end=" in p.page.url
    assert p.page.is_visible("#zoom-reset")
    p.charts_drawn()
    assert canvas_pixels(p.page, "figure[data-chart=cpu]") > 500
    p.shot("host-zoomed")
    p.page.click("#zoom-reset")
    p.page.wait_for_function("!location.search.includes('start=')")

    p.page.click("#refresh-toggle")
    assert p.page.get_attribute("#refresh-toggle", "aria-pressed") == "true"
    assert p.page.inner_text("#refresh-toggle") == "Resume refresh"
    theme = p.page.get_attribute("html", "data-theme")
    before = drawn_marks(p.page)
    p.page.keyboard.press("Tab")  # the controls are reachable from the keyboard
    p.page.focus("#theme-toggle")
    p.page.keyboard.press("Enter")
    assert p.page.get_attribute("html", "data-theme") != theme
    redrawn(p.page, before)  # the charts take the theme's colours
    p.shot("host-other-theme")
    assert p.errors == []


def test_acknowledge_resolve_and_silence_from_the_alerts_page(operator, ui_stack, data, ui_output):
    ids = data["alerts"]
    p = Page(operator, ui_stack, ui_output)
    p.open("/alerts/")
    row = f"#alerts tr[data-alert='{ids['disk-full']}']"
    p.page.click(f"{row} button[data-act=ack]")
    p.page.fill("#ack-dialog textarea", "looking into it")
    p.page.click("#ack-dialog button[value=ok]")
    p.page.wait_for_selector(f"{row}[data-status=acknowledged]")
    assert p.page.locator(f"{row} button[data-act=ack]").count() == 0
    assert "looking into it" in p.page.inner_text(row)

    pending = f"#alerts tr[data-alert='{ids['load-rising']}']"
    assert p.page.locator(f"{pending} button[data-act=ack]").count() == 0
    assert "acknowledge once firing" in p.page.inner_text(pending)

    p.page.click(f"#alerts tr[data-alert='{ids['cpu-hot']}'] button[data-act=resolve]")
    p.page.wait_for_selector(f"#alerts tr[data-alert='{ids['cpu-hot']}']", state="detached")
    assert "resolved" in p.page.inner_text("#flash")

    p.page.click(f"#alerts tr[data-alert='{ids['mem-hot']}'] button[data-act=silence]")
    assert f"host={HOST}" in p.page.input_value("#silence-dialog textarea[name=matchers]")
    p.page.fill("#silence-dialog input[name=comment]", "maintenance")
    p.page.click("#silence-dialog button[value=ok]")
    p.page.wait_for_selector("#silences tr[data-silence] >> text=maintenance")
    p.page.click("#silences button[data-act=expire]")
    p.page.wait_for_selector("#silences tr[data-silence] >> text=inactive")

    # A refusal says why: the alert was resolved elsewhere after this page loaded.
    late = ids["late-ack"]
    status, _ = api(ui_stack, data["token"], "POST", f"/api/v1/monitoring/alerts/{late}/resolve", {})
    assert status == 200
    p.page.click(f"#alerts tr[data-alert='{late}'] button[data-act=ack]")
    p.page.fill("#ack-dialog textarea", "too late")
    p.page.click("#ack-dialog button[value=ok]")
    p.page.wait_for_selector("#flash.error")
    assert "only a firing alert can be acknowledged" in p.page.inner_text("#flash")
    p.shot("alerts-after-actions")
    assert [e for e in p.errors if "409" not in e] == []


def test_log_search_and_request_view(operator, ui_stack, data, ui_output):
    p = Page(operator, ui_stack, ui_output)
    p.open("/logs/")
    p.page.fill("#log-search input[name=q]", "declined")
    p.page.click("#log-search button[type=submit]")
    p.page.wait_for_selector("#logs td.msg >> text=payment 4242 declined")
    assert "q=declined" in p.page.url
    p.page.click("#logs a.rid >> text=req-w2")
    p.page.wait_for_url("**/requests/req-w2/")
    p.page.wait_for_selector("#request-logs tbody tr")
    times = p.page.eval_on_selector_all(
        "#request-logs tbody tr td:first-child", "tds => tds.map(t => t.textContent)"
    )
    assert len(times) >= 2 and times == sorted(times)
    assert "payment 4242 declined" in p.page.inner_text("#request-logs")
    p.shot("request")

    p.open("/logs/")
    p.page.wait_for_selector("#logs tr.lvl-error")
    p.page.click("#tail-toggle")
    assert p.page.get_attribute("#tail-toggle", "aria-pressed") == "true"
    run_app("wsgi", ui_stack.env, ["/sku/9"], ["req-tail"])
    p.page.wait_for_selector("#logs a.rid >> text=req-tail", timeout=60_000)
    assert p.errors == []


def test_viewer_sees_no_action_buttons(browser, ui_stack, data, ui_output):
    context = login(browser, ui_stack, "viewer")
    p = Page(context, ui_stack, ui_output)
    p.open("/alerts/")
    p.page.wait_for_selector("#alerts tr[data-alert]")
    p.page.wait_for_selector("#silences tbody tr")
    assert p.page.locator("button[data-act]").count() == 0
    assert p.page.locator("dialog").count() == 0
    assert "(viewer)" in p.page.inner_text("header")
    p.shot("alerts-viewer")
    context.close()


def test_pages_fit_a_phone_screen(browser, ui_stack, data, ui_output):
    context = login(browser, ui_stack, "operator", viewport={"width": 375, "height": 800})
    p = Page(context, ui_stack, ui_output)
    for path, name in (("/", "fleet-phone"), (f"/hosts/{HOST}/", "host-phone"), ("/alerts/", "alerts-phone")):
        p.open(path)
        p.page.wait_for_load_state("networkidle")
        assert p.page.evaluate("document.documentElement.scrollWidth") <= 375, path
        p.shot(name)
    assert p.errors == []
    context.close()


def test_rule_editor_previews_and_saves_a_rule_from_fields(browser, ui_stack, data, ui_output):
    context = login(browser, ui_stack, "rule-admin")  # saving a rule needs the admin role
    p = Page(context, ui_stack, ui_output)
    p.open(f"/rules/{data['rule']}/")
    p.page.wait_for_selector(f"#rule-groups tr[data-breaches] >> text=host={HOST}")
    p.charts_drawn()
    assert p.page.input_value("#rule input[name=metric]") == "system_cpu_usage_percent"
    assert canvas_pixels(p.page, "#rule-chart") > 500
    p.page.fill("#rule input[name=threshold]", "0")
    p.page.select_option("#rule select[name=comparison]", ">=")
    p.page.click("#rule-preview")
    p.page.wait_for_selector("#rule-groups tr[data-breaches=true]")
    p.shot("rule")
    p.page.click("#rule-save")
    p.page.wait_for_selector("#flash.ok")
    status, rule = api(ui_stack, data["token"], "GET", f"/api/v1/monitoring/rules/{data['rule']}")
    rule = rule.get("data", rule)
    assert status == 200 and rule["threshold"] == 0 and rule["comparison"] == ">="
    assert rule["query"]["group_by"] == ["host"]
    assert p.errors == []
    context.close()


def test_a_chart_that_fails_to_load_says_why_and_the_others_still_draw(operator, ui_stack, data, ui_output):
    p = Page(operator, ui_stack, ui_output)
    failure = '{"success": false, "error": "database unavailable"}'
    p.page.route(
        "**/ui/api/chart?chart=load&*",
        lambda route: route.fulfill(status=500, content_type="application/json", body=failure),
    )
    p.open(f"/hosts/{HOST}/")
    p.charts_drawn()
    assert p.page.get_attribute("figure[data-chart=load]", "data-drawn") == "failed"
    assert "Could not load Load average: database unavailable" in p.page.inner_text("figure[data-chart=load]")
    assert canvas_pixels(p.page, "figure[data-chart=cpu]") > 500
    p.page.wait_for_selector("#host-logs tbody tr.lvl-info")
    p.shot("host-one-chart-failed")
    assert [e for e in p.errors if "500" not in e] == []
