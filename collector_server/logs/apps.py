from django.apps import AppConfig


class LogsConfig(AppConfig):
    name = "collector_server.logs"
    label = "logs"
    verbose_name = "Logs"
