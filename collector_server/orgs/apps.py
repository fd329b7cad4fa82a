from __future__ import annotations

from django.apps import AppConfig


class OrgsConfig(AppConfig):
    name = "collector_server.orgs"
    label = "orgs"
    verbose_name = "Organisations, members, tokens and audit"

    def ready(self) -> None:
        from django.db.models.signals import pre_save

        from collector_server.orgs import audit_registry, schema  # noqa: F401 (registers the extension)
        from collector_server.orgs.scope import fill_organization

        pre_save.connect(fill_organization, dispatch_uid="fleetwatch-fill-organization")
        audit_registry.register_defaults()
