from django.apps import AppConfig


class EnrollmentsConfig(AppConfig):
    name = "collector_server.enrollments"
    label = "enrollments"
    verbose_name = "Agent enrollments"
