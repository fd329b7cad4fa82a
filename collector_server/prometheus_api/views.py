"""The Prometheus HTTP API under /prometheus/api/v1 (what Grafana's Prometheus data source calls).

Views stay thin: parse parameters, evaluate, shape the answer. `get_scope` is the one
hook that narrows what a caller sees: the caller's organisations (orgs.scope.sql_filter).
"""

from __future__ import annotations

import logging
import time

from django.http import HttpResponse, QueryDict
from rest_framework import exceptions
from rest_framework.authentication import BasicAuthentication, SessionAuthentication
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from collector_server.orgs import roles, scope
from collector_server.orgs.authentication import ApiTokenAuthentication
from collector_server.prometheus_api import catalog, formatting
from collector_server.prometheus_api.params import parse_duration, parse_time
from collector_server.prometheus_api.promql import fastpath
from collector_server.prometheus_api.promql.evaluator import Evaluator, parse
from collector_server.prometheus_api.promql.storage import Scope
from collector_server.prometheus_api.promql.values import PromQLError, Scalar, Steps, Vector

log = logging.getLogger(__name__)

MAX_POINTS = 11_000
DEFAULT_SERIES_LIMIT = 10_000
BUILD_INFO = {
    "version": "2.42.0",
    "revision": "fleetwatch",
    "branch": "fleetwatch",
    "buildUser": "fleetwatch",
    "buildDate": "20260101-00:00:00",
    "goVersion": "go1.19",
}
STATUS = {"bad_data": 400, "execution": 422, "unauthorized": 401, "forbidden": 403, "not_found": 404}


def error(kind: str, message: str) -> Response:
    return Response({"status": "error", "errorType": kind, "error": message}, status=STATUS.get(kind, 400))


def success(data: object) -> Response:
    return Response({"status": "success", "data": data})


class AnyAccept(DefaultContentNegotiation):
    """Answer in the view's one format whatever Accept says (Prometheus' scrape Accept included)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class PrometheusView(APIView):
    """Base: GET and POST (form) parameters, Prometheus' error shape."""

    renderer_classes = [JSONRenderer]
    content_negotiation_class = AnyAccept
    # Prometheus' API is described by Prometheus (docs/prometheus.md), not in fleetwatch's OpenAPI schema.
    schema = None
    # Basic auth too: what Grafana's data source and Prometheus' remote_write offer, and the only
    # way promtool (no HTTP config in 2.42) can authenticate (user:password in the URL).
    authentication_classes = [ApiTokenAuthentication, BasicAuthentication, SessionAuthentication]
    # Queries may be POSTed (form): reading needs the viewer role whatever the method.
    required_roles = {"get": roles.VIEWER, "post": roles.VIEWER}
    http_method_names = ["get", "post", "options"]

    def get_scope(self) -> Scope | None:
        """Return the condition on series this caller may see: its organisations (None: all)."""
        clause, params = scope.sql_filter("s.organization_id")
        if not params:
            return None
        return Scope(clause, tuple(params))

    def params(self, request: Request) -> QueryDict:
        merged = request.query_params.copy()
        if request.method == "POST" and isinstance(request.data, QueryDict):
            for key in request.data:
                merged.setlist(key, request.data.getlist(key))
        for key in merged:
            if any("\x00" in value for value in merged.getlist(key)):
                raise PromQLError(f'invalid parameter "{key}": contains a NUL character')
        return merged

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, PromQLError):
            return error(exc.kind, str(exc))
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            response = error("unauthorized", str(exc.detail))
            response["WWW-Authenticate"] = 'Token realm="fleetwatch"'
            return response
        if isinstance(exc, exceptions.PermissionDenied):
            return error("forbidden", str(exc.detail))
        if isinstance(
            exc, exceptions.MethodNotAllowed | exceptions.ParseError | exceptions.UnsupportedMediaType
        ):
            return error("bad_data", str(exc.detail))
        return super().handle_exception(exc)

    def get(self, request: Request, **kwargs: str) -> Response:
        return self.answer(self.params(request), **kwargs)

    def post(self, request: Request, **kwargs: str) -> Response:
        return self.answer(self.params(request), **kwargs)

    def answer(self, params: QueryDict, **kwargs: str) -> Response:
        raise NotImplementedError


def _required(params: QueryDict, name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise PromQLError(f'invalid parameter "{name}": missing')
    return value


def _query(params: QueryDict) -> str:
    return _required(params, "query")


class QueryView(PrometheusView):
    def answer(self, params: QueryDict, **kwargs: str) -> Response:
        query = _query(params)
        at = parse_time("time", params["time"]) if params.get("time") else int(time.time() * 1000)
        steps = Steps(at, at, 1)
        evaluator = Evaluator(steps, self.get_scope())
        value = evaluator.eval(parse(query))
        return success(formatting.instant(value, steps, evaluator.order))


class QueryRangeView(PrometheusView):
    def answer(self, params: QueryDict, **kwargs: str) -> Response | HttpResponse:
        query = _query(params)
        start = parse_time("start", _required(params, "start"))
        end = parse_time("end", _required(params, "end"))
        if end < start:
            raise PromQLError('invalid parameter "end": end timestamp must not be before start time')
        step = parse_duration("step", _required(params, "step"))
        if step <= 0:
            raise PromQLError(
                'invalid parameter "step": zero or negative query resolution step widths are not accepted. '
                "Try a positive integer"
            )
        if (end - start) // step > MAX_POINTS:
            raise PromQLError(
                "exceeded maximum resolution of 11,000 points per timeseries. "
                "Try decreasing the query resolution (?step=XX)"
            )
        steps = Steps(start, end, step)
        tree = parse(query)
        fast = fastpath.matrix_json(tree, steps, self.get_scope())
        if fast is not None:
            body = '{"status":"success","data":{"resultType":"matrix","result":' + fast + "}}"
            return HttpResponse(body, content_type="application/json")
        value = Evaluator(steps, self.get_scope()).eval(tree)
        if not isinstance(value, Vector | Scalar):
            raise PromQLError(
                f'invalid expression type "{type(value).__name__.lower()}" for range query, must be Scalar or instant Vector'
            )
        return success(formatting.matrix(value, steps))


def _selectors(params: QueryDict, required: bool) -> list:
    texts = params.getlist("match[]")
    if required and not texts:
        raise PromQLError("no match[] parameter provided")
    return [catalog.selector_matchers(text) for text in texts]


def _limit(params: QueryDict, default: int | None) -> int | None:
    text = params.get("limit")
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise PromQLError(f'invalid parameter "limit": cannot parse "{text}" to an integer') from None
    if value < 0:
        raise PromQLError('invalid parameter "limit": must not be negative')
    return value or default


def _check_range(params: QueryDict) -> None:
    """start and end are accepted (series are not filtered by them) but must be valid."""
    for name in ("start", "end"):
        if params.get(name):
            parse_time(name, params[name])


class SeriesView(PrometheusView):
    def answer(self, params: QueryDict, **kwargs: str) -> Response:
        selectors = _selectors(params, required=True)
        _check_range(params)
        return success(catalog.series(selectors, self.get_scope(), _limit(params, DEFAULT_SERIES_LIMIT)))


class LabelsView(PrometheusView):
    def answer(self, params: QueryDict, **kwargs: str) -> Response:
        selectors = _selectors(params, required=False)
        _check_range(params)
        return success(catalog.label_names(selectors, self.get_scope()))


class LabelValuesView(PrometheusView):
    def answer(self, params: QueryDict, **kwargs: str) -> Response:
        selectors = _selectors(params, required=False)
        _check_range(params)
        return success(catalog.label_values(kwargs["name"], selectors, self.get_scope()))


class MetadataView(PrometheusView):
    def answer(self, params: QueryDict, **kwargs: str) -> Response:
        return success(catalog.metadata(params.get("metric") or None, self.get_scope(), _limit(params, None)))


class BuildInfoView(PrometheusView):
    def answer(self, params: QueryDict, **kwargs: str) -> Response:
        return success(BUILD_INFO)
