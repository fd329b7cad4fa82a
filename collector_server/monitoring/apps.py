from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "collector_server.monitoring"
    label = "monitoring"
    verbose_name = "Monitoring"
