"""The inference alert rules (collector_server.inference.defaults) in every organisation existing then."""

from django.db import migrations

from collector_server.inference.defaults import INFERENCE_RULES


def create_rules(apps, schema_editor):
    AlertRule = apps.get_model("alerts", "AlertRule")
    Organization = apps.get_model("orgs", "Organization")
    for org_id in Organization.objects.values_list("pk", flat=True):
        for spec in INFERENCE_RULES:
            AlertRule.objects.get_or_create(organization_id=org_id, name=spec["name"], defaults={**spec})


def remove_rules(apps, schema_editor):
    AlertRule = apps.get_model("alerts", "AlertRule")
    AlertRule.objects.filter(name__in=[spec["name"] for spec in INFERENCE_RULES]).delete()


class Migration(migrations.Migration):
    dependencies = [("inference", "0001_initial"), ("alerts", "0005_organizations"), ("orgs", "0001_initial")]

    operations = [migrations.RunPython(create_rules, remove_rules)]
