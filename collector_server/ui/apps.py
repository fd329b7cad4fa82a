from __future__ import annotations

from django.apps import AppConfig


class UiConfig(AppConfig):
    name = "collector_server.ui"
    label = "ui"
    verbose_name = "web UI"
