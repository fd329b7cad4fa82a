"""Refuse unknown query parameters: a misspelt ``?minute=5`` is a 400, never a silent default.

The accepted names of a GET endpoint are derived from what the view already declares, so they
cannot drift from the OpenAPI schema (tests/server/test_unknown_parameters.py compares them):

- the ``parameters`` of the handler's ``@extend_schema`` (query parameters only);
- for list actions (``list`` and the names in ``list_actions``): the filter parameters of the
  view's filter backends (the django-filter FilterSet's filters) and the paginator's parameters;
- DRF's ``format`` override, always;
- any name starting with one of ``query_param_prefixes`` (e.g. the logs search's ``attr.<key>``).
"""

from __future__ import annotations

import inspect
from typing import Any

from django.http import QueryDict
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.settings import api_settings

from collector_server.monitoring.api.errors import BadParameter

CHECKED_METHODS = ("GET", "HEAD")
_CACHE: dict[tuple[type, str], frozenset[str]] = {}


class KnownQueryParamsMixin:
    """A view mixin: GET/HEAD with a query parameter the endpoint does not read is a 400 naming it."""

    list_actions: tuple[str, ...] = ("list",)
    query_param_prefixes: tuple[str, ...] = ()

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authentication and permissions first
        if request.method in CHECKED_METHODS:
            reject_nul(request.query_params)
            reject_unknown(request.query_params, self.accepted_query_params(), self.query_param_prefixes)

    def accepted_query_params(self) -> frozenset[str]:
        handler = getattr(self, "action", None) or "get"
        key = (type(self), handler)
        if key not in _CACHE:
            _CACHE[key] = frozenset(self._accepted_query_params(handler))
        return _CACHE[key]

    def _accepted_query_params(self, handler: str) -> set[str]:
        names = {api_settings.URL_FORMAT_OVERRIDE} - {None}
        names |= declared_query_params(self, handler)
        if handler in self.list_actions:
            names |= filter_query_params(self)
            paginator = getattr(self, "paginator", None)
            if paginator is not None:
                names |= {p["name"] for p in paginator.get_schema_operation_parameters(self)}
        return names


def reject_nul(query: Any) -> None:
    """Refuse NUL characters in any parameter name or value (PostgreSQL text cannot hold them)."""
    items = query.lists() if hasattr(query, "lists") else ((k, [v]) for k, v in query.items())
    for name, values in items:
        if "\x00" in name or any(isinstance(v, str) and "\x00" in v for v in values):
            raise BadParameter(name.replace("\x00", "\\x00"), "must not contain NUL characters")


def reject_unknown(
    query: QueryDict, accepted: frozenset[str] | set[str], prefixes: tuple[str, ...] = ()
) -> None:
    """Raise BadParameter for the first (sorted) name that is not accepted."""
    for name in sorted(query.keys()):
        if name in accepted or (prefixes and name.startswith(prefixes)):
            continue
        raise BadParameter(name, f"unknown parameter; accepted: {describe(accepted, prefixes)}")


def describe(accepted: frozenset[str] | set[str], prefixes: tuple[str, ...] = ()) -> str:
    return ", ".join([*sorted(accepted), *(f"{prefix}<name>" for prefix in prefixes)])


def declared_query_params(view: Any, handler: str) -> set[str]:
    """The query parameters listed in the handler's @extend_schema(parameters=...)."""
    method = getattr(view, handler, None)
    schema = getattr(method, "kwargs", {}).get("schema") or getattr(type(view), "schema", None)
    if schema is None:
        return set()
    schema = (schema if inspect.isclass(schema) else type(schema))()
    if not hasattr(schema, "get_override_parameters"):
        return set()
    schema.view = view
    schema.method = "GET"
    names: set[str] = set()
    for parameter in schema.get_override_parameters():
        if isinstance(parameter, OpenApiParameter):
            if (
                parameter.location == OpenApiParameter.QUERY
                and not parameter.exclude
                and not parameter.response
            ):
                names.add(parameter.name)
        elif isinstance(parameter, serializers.BaseSerializer) or (
            inspect.isclass(parameter) and issubclass(parameter, serializers.BaseSerializer)
        ):
            instance = parameter() if inspect.isclass(parameter) else parameter
            names |= set(instance.fields)
    return names


def paging_parameters(paginator_class: type) -> list[OpenApiParameter]:
    """A paginator's query parameters for @extend_schema (on actions the schema does not page by itself)."""
    return [
        OpenApiParameter(
            p["name"],
            OpenApiTypes.INT if p["schema"].get("type") == "integer" else OpenApiTypes.STR,
            description=p.get("description", ""),
        )
        for p in paginator_class().get_schema_operation_parameters(None)
    ]


def filter_query_params(view: Any) -> set[str]:
    """The parameters the view's filter backends read (a FilterSet's filters, widget suffixes included)."""
    names: set[str] = set()
    for backend_class in getattr(view, "filter_backends", ()):
        backend = backend_class()
        if isinstance(backend, DjangoFilterBackend):
            filterset_class = getattr(view, "filterset_class", None) or backend.get_filterset_class(
                view, view.get_queryset()
            )
            if filterset_class is None:
                continue
            for name, filter_ in filterset_class.base_filters.items():
                suffixes = getattr(filter_.field.widget, "suffixes", None)
                names |= {f"{name}_{s}" if s else name for s in suffixes} if suffixes else {name}
        else:
            names |= {p["name"] for p in backend.get_schema_operation_parameters(view)}
    return names
