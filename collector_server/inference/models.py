"""The price table (per model, per 1k input and output tokens, with history) and cost budgets."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from collector_server.orgs.scope import OrgManager, organization_field


class ModelPrice(models.Model):
    """The price of one model from ``valid_from`` until the next row of the same model.

    Rows are never changed: a new price is a new row (the admin adds, never edits), so a cost
    computed for last month stays what it was.
    """

    organization = organization_field()
    model = models.CharField(
        max_length=200, help_text="The model label exactly as recorded (e.g. qwen2.5:7b)."
    )
    input_per_1k = models.DecimalField(
        max_digits=14,
        decimal_places=8,
        validators=[MinValueValidator(Decimal(0))],
        help_text="USD per 1,000 input tokens.",
    )
    output_per_1k = models.DecimalField(
        max_digits=14,
        decimal_places=8,
        validators=[MinValueValidator(Decimal(0))],
        help_text="USD per 1,000 output tokens.",
    )
    valid_from = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)

    objects = OrgManager()

    class Meta:
        ordering = ["model", "-valid_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "model", "valid_from"], name="price_org_model_from_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.model} from {self.valid_from:%Y-%m-%d %H:%M}: {self.input_per_1k}/{self.output_per_1k} per 1k"


class Budget(models.Model):
    """A cost budget per day or month (UTC) of one customer organisation (blank: the whole tenant)."""

    DAY, MONTH = "day", "month"
    PERIOD_CHOICES = [(DAY, "day"), (MONTH, "month")]

    organization = organization_field()
    customer_organization = models.CharField(
        max_length=200, blank=True, help_text="The `organization` label sent by the app; blank: every one."
    )
    model = models.CharField(max_length=200, blank=True, help_text="Blank: every model.")
    period = models.CharField(max_length=5, choices=PERIOD_CHOICES, default=DAY)
    amount_usd = models.DecimalField(
        max_digits=14, decimal_places=4, validators=[MinValueValidator(Decimal("0.0001"))]
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrgManager()

    class Meta:
        ordering = ["customer_organization", "model", "period"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "customer_organization", "model", "period"], name="budget_scope_uniq"
            )
        ]

    def __str__(self) -> str:
        who = self.customer_organization or "every organisation"
        what = self.model or "every model"
        return f"{who} / {what}: {self.amount_usd} USD per {self.period}"
