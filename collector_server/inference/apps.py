from django.apps import AppConfig


class InferenceConfig(AppConfig):
    name = "collector_server.inference"
    label = "inference"
    verbose_name = "LLM inference"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from collector_server.inference import rule_queries  # noqa: F401  (registers the query types)
        from collector_server.inference.models import Budget, ModelPrice
        from collector_server.orgs import audit

        audit.register(ModelPrice)
        audit.register(Budget, exclude=("updated_at",))

        from django.db.models.signals import post_save

        from collector_server.inference.defaults import organization_created, organization_deleting
        from collector_server.orgs.models import Organization
        from collector_server.orgs.models import organization_deleting as deleting

        post_save.connect(organization_created, sender=Organization, dispatch_uid="inference-default-rules")
        deleting.connect(organization_deleting, dispatch_uid="inference-default-rules-go")
