"""Build one chart's body: the lines on one time axis, the alert firings in range as markers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from collector_server.alerts.models import Alert, AlertEvent
from collector_server.monitoring import query
from collector_server.monitoring.api.system_data import iso
from collector_server.ui import endpoint_charts, model_charts
from collector_server.ui.charts import CHARTS, Chart, Line, Table, run_line

MAX_MARKERS = 200
ALL_CHARTS: dict[str, Chart] = {
    **CHARTS,
    **{c.name: c for c in endpoint_charts.ENDPOINT_CHARTS},
    **model_charts.CHARTS_BY_NAME,
}


def named_chart(name: str, host: str, start: datetime, end: datetime, step: int) -> dict[str, Any]:
    """Return the body of a registered chart (host charts need `host`)."""
    chart = ALL_CHARTS[name]
    table = Table()
    if name in CHARTS:
        for line in chart.lines:
            run_line(table, line, [f"host={_quoted(host)}"], start, end, step)
    elif name in model_charts.CHARTS_BY_NAME:
        model_charts.fill(table, name, start, end, step)
    else:
        endpoint_charts.fill(table, name, start, end, step)
    return body(table, chart.describe(), start, end, host or None)


def metric_chart(
    metric: str,
    matchers: list[str],
    agg: str,
    by: list[str],
    start: datetime,
    end: datetime,
    step: int,
) -> dict[str, Any]:
    """Return the body of an ad hoc chart (the explorer, the rule editor's preview)."""
    table = Table()
    label = " ".join(f"{name}={{{name}}}" for name in by) if by else metric
    run_line(table, Line(metric, label, agg, tuple(matchers), tuple(by)), [], start, end, step)
    if not by:
        for line in table.lines:
            extra = {k: v for k, v in line["labels"].items() if k != "__name__"}
            line["label"] = ",".join(f"{k}={v}" for k, v in sorted(extra.items())) or metric
    host = _host_of(matchers)
    describe = {"name": "", "title": f"{agg}({metric})", "unit": "", "stacked": False}
    return body(table, describe, start, end, host)


def body(
    table: Table, describe: dict[str, Any], start: datetime, end: datetime, host: str | None
) -> dict[str, Any]:
    stamps, series = table.aligned()
    return {
        **describe,
        "start": int(start.timestamp()),
        "end": int(end.timestamp()),
        "step": table.step,
        "source": table.source or query.RAW,
        "timestamps": stamps,
        "series": series,
        "markers": markers(start, end, host),
    }


def markers(start: datetime, end: datetime, host: str | None) -> list[dict[str, Any]]:
    """Alert firings in [start, end], of `host`'s alerts when given."""
    events = AlertEvent.objects.filter(to_state=Alert.FIRING, at__gte=start, at__lte=end, alert__isnull=False)
    if host:
        events = events.filter(alert__labels__host=host)
    rows = events.select_related("alert").order_by("-at")[:MAX_MARKERS]
    return [
        {
            "t": int(e.at.timestamp()),
            "at": iso(e.at),
            "alert": e.alert_id,
            "name": e.alert.name,
            "severity": e.alert.severity,
        }
        for e in rows
    ]


def _quoted(value: str) -> str:
    return '"' + value.replace('"', "") + '"'


def _host_of(matchers: list[str]) -> str | None:
    for text in matchers:
        name, sep, value = text.partition("=")
        if sep and name.strip() == "host" and not value.startswith(("~", "=")):
            return value.strip().strip("\"'")
    return None
