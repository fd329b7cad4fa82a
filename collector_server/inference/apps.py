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

        # Every new organisation gets them, and they go with it (collector_server.alerts.signals).
        from collector_server.alerts.defaults import register_rule_set
        from collector_server.inference.defaults import INFERENCE_RULES

        register_rule_set(INFERENCE_RULES)
