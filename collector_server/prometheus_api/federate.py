"""GET /federate?match[]=...: the latest sample of every matching series, in the text exposition format.

What an existing Prometheus scrapes to pull fleetwatch's host metrics (with
`honor_labels: true`, as for any federation). A sample older than the lookback (5 min)
is not exposed, as in Prometheus.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from django.http import HttpResponse, QueryDict

from collector_server.prometheus_api import catalog
from collector_server.prometheus_api.formatting import number
from collector_server.prometheus_api.promql import storage
from collector_server.prometheus_api.promql.values import PromQLError
from collector_server.prometheus_api.views import PrometheusView

LOOKBACK = timedelta(minutes=5)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _line(series: storage.StoredSeries, ts: datetime, value: float) -> str:
    labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(series.labels.items()))
    return f"{series.name}{{{labels}}} {number(value)} {int(ts.timestamp() * 1000)}"


def exposition(selectors: list[list[storage.LabelMatcher]], scope: storage.Scope | None) -> str:
    """Render the latest samples of the series matching any selector."""
    chosen: dict[int, storage.StoredSeries] = {}
    for matchers in selectors:
        for series in storage.select_series(matchers, scope):
            chosen[series.id] = series
    if not chosen:
        return ""
    now = datetime.fromtimestamp(time.time(), UTC)
    rows = storage.fetch(
        "SELECT DISTINCT ON (series_id) series_id, ts, value FROM monitoring_sample "
        "WHERE series_id = ANY(%s) AND ts >= %s AND ts <= %s ORDER BY series_id, ts DESC",
        [list(chosen), now - LOOKBACK, now],
    )
    by_name: dict[str, list[str]] = {}
    kinds: dict[str, str] = {}
    for sid, ts, value in rows:
        series = chosen[sid]
        kinds.setdefault(series.name, series.kind)
        by_name.setdefault(series.name, []).append(_line(series, ts, value))
    out = []
    for name in sorted(by_name):
        out.append(f"# TYPE {name} {'counter' if kinds[name] == 'counter' else 'gauge'}")
        out.extend(sorted(by_name[name]))
    return "\n".join(out) + "\n"


class FederateView(PrometheusView):
    http_method_names = ["get", "options"]

    def answer(self, params: QueryDict, **kwargs: str) -> HttpResponse:
        texts = params.getlist("match[]")
        if not texts:
            raise PromQLError("no match[] parameter provided")
        selectors = [catalog.selector_matchers(text) for text in texts]
        return HttpResponse(exposition(selectors, self.get_scope()), content_type=CONTENT_TYPE)
