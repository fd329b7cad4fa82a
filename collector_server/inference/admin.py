"""The price table (add-only: history is kept) and the budgets, in the Django admin."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from collector_server.inference.models import Budget, ModelPrice
from collector_server.orgs.admin_scope import OrganizationAdminMixin


@admin.register(ModelPrice)
class ModelPriceAdmin(OrganizationAdminMixin, admin.ModelAdmin):
    """A price change is a new row from its ``valid_from``; a stored row is never edited or deleted."""

    list_display = ("model", "input_per_1k", "output_per_1k", "valid_from", "organization")
    list_filter = ("organization",)
    search_fields = ("model",)
    ordering = ("model", "-valid_from")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Budget)
class BudgetAdmin(OrganizationAdminMixin, admin.ModelAdmin):
    list_display = ("customer_organization", "model", "period", "amount_usd", "enabled", "organization")
    list_filter = ("period", "enabled", "organization")
    search_fields = ("customer_organization", "model")
