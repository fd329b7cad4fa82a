"""The price table keeps its history (admin adds, never edits or deletes) and every change is audited."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from collector_server.inference.models import Budget, ModelPrice
from collector_server.inference.pricing import PriceTable
from collector_server.orgs import audit
from collector_server.orgs.models import AuditEvent
from tests.members import member


def test_prices_are_looked_up_by_time_and_changes_are_audited(db):
    admin = member(User.objects.create_user("price-admin", is_staff=True), "admin")
    now = timezone.now()
    with audit.use_actor(admin):
        ModelPrice.objects.create(
            model="m", input_per_1k=Decimal(1), output_per_1k=Decimal(3), valid_from=now - timedelta(days=2)
        )
        ModelPrice.objects.create(
            model="m", input_per_1k=Decimal(2), output_per_1k=Decimal(4), valid_from=now - timedelta(days=1)
        )
        budget = Budget.objects.create(customer_organization="acme", amount_usd=Decimal(5))
        budget.amount_usd = Decimal(7)
        budget.save()
    table = PriceTable()
    assert table.cost("m", (now - timedelta(days=3)).timestamp(), 1000, 1000) is None  # before any price
    assert table.cost("m", (now - timedelta(hours=36)).timestamp(), 1000, 500) == 1 + 1.5
    assert table.cost("m", now.timestamp(), 1000, 500) == 2 + 2
    events = AuditEvent.all_objects.filter(object_type__startswith="inference.")
    assert {(e.object_type, e.action) for e in events} >= {
        ("inference.modelprice", "create"),
        ("inference.budget", "create"),
        ("inference.budget", "update"),
    }
    assert all(e.actor_id == admin.pk for e in events)


def test_the_admin_adds_prices_but_never_edits_or_deletes_one(db):
    admin = member(User.objects.create_user("price-admin-2", is_staff=True), "admin")
    price = ModelPrice.objects.create(model="m", input_per_1k=Decimal(1), output_per_1k=Decimal(1))
    web = Client()
    web.force_login(admin)
    assert web.get("/admin/inference/modelprice/add/").status_code == 200
    assert web.get(f"/admin/inference/modelprice/{price.pk}/delete/").status_code == 403
    response = web.post(
        f"/admin/inference/modelprice/{price.pk}/change/",
        {
            "model": "m",
            "input_per_1k": "9",
            "output_per_1k": "9",
            "valid_from_0": "2026-01-01",
            "valid_from_1": "00:00:00",
        },
    )
    assert response.status_code == 403
    price.refresh_from_db()
    assert price.input_per_1k == Decimal(1)
