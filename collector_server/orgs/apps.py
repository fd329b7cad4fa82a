from __future__ import annotations

from django.apps import AppConfig


class OrgsConfig(AppConfig):
    name = "collector_server.orgs"
    label = "orgs"
    verbose_name = "Organisations, members, tokens and audit"

    def ready(self) -> None:
        from collector_server.orgs import audit_registry, schema  # noqa: F401 (registers the extension)

        audit_registry.register_defaults()
