from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "collector_server.alerts"
    label = "alerts"
    verbose_name = "Alerting"

    def ready(self) -> None:
        from collector_server.alerts import (
            log_query,  # noqa: F401  (registers the log_count query type)
            signals,
        )

        signals.connect()
