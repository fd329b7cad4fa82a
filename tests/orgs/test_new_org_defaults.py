"""A new organisation starts with the default rules, like the ones that existed at migration."""

from __future__ import annotations

from collector_server.alerts.defaults import DEFAULT_RULES
from collector_server.alerts.models import AlertRule
from collector_server.inference.defaults import INFERENCE_RULES
from collector_server.orgs import scope
from collector_server.orgs.models import Organization

NAMES = {spec["name"] for spec in DEFAULT_RULES} | {spec["name"] for spec in INFERENCE_RULES}


def rule_names(org: Organization) -> set[str]:
    with scope.use_scope(None):
        return set(AlertRule.objects.filter(organization=org).values_list("name", flat=True))


def test_a_new_organisation_gets_the_seed_and_inference_default_rules(db):
    other = scope.for_organization(scope.default_organization_id())
    with scope.use_scope(other):  # created by someone scoped elsewhere (a superuser in the admin)
        org = Organization.objects.create(slug="newco", name="New Co")
    assert rule_names(org) == NAMES
    with scope.use_scope(None):
        spec = next(s for s in DEFAULT_RULES if s["name"] == "Host Down")
        rule = AlertRule.objects.get(organization=org, name="Host Down")
        assert (rule.query_type, rule.threshold, rule.severity) == (
            spec["query_type"],
            spec["threshold"],
            "critical",
        )


def test_an_operators_deletion_is_not_undone_when_the_organisation_is_saved_again(db):
    org = Organization.objects.create(slug="keepco", name="Keep Co")
    with scope.use_scope(None):
        AlertRule.objects.filter(organization=org, name="Host Down").delete()
    org.name = "Keep Co renamed"
    org.save()
    assert rule_names(org) == NAMES - {"Host Down"}


def test_an_organisation_holding_only_its_default_rules_can_be_deleted(db):
    org = Organization.objects.create(slug="gone-co", name="Gone Co")
    assert rule_names(org) == NAMES
    org.delete()
    assert not Organization.objects.filter(slug="gone-co").exists()
    with scope.use_scope(None):
        assert not AlertRule.objects.filter(name__in=NAMES, organization_id=org.pk).exists()


def test_an_organisation_with_data_stays_protected_and_keeps_its_rules(db):
    import pytest
    from django.db.models import ProtectedError

    from collector_server.monitoring.models import Host

    org = Organization.objects.create(slug="busy-co", name="Busy Co")
    Host.objects.create(agent_id="busy-1", hostname="busy-1", organization=org)
    with pytest.raises(ProtectedError):
        org.delete()
    assert rule_names(org) == NAMES  # the rules' deletion was rolled back with the refusal
