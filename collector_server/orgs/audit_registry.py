"""What the audit trail records: registered here for the core models; other apps call audit.register."""

from __future__ import annotations

from typing import Any

from collector_server.orgs import audit

SECRET_NAME_PARTS = ("password", "secret", "token", "key", "authorization", "url", "headers")


def mask_channel_config(channel: Any, config: Any) -> Any:
    """Mask the transport's secret fields of a channel's config, and anything named like a secret."""
    if not isinstance(config, dict):
        return config
    from alerting_worker.alerting import transports

    try:
        secret = set(transports.get(channel.kind).secret_fields)
    except ValueError:
        secret = set()
    return {
        key: audit.SECRET_MASK
        if value and (key in secret or any(part in key.lower() for part in SECRET_NAME_PARTS))
        else value
        for key, value in config.items()
    }


def register_defaults() -> None:
    from collector_server.alerts.models import (
        AlertRule,
        Channel,
        EscalationPolicy,
        EscalationStep,
        Route,
        Silence,
    )
    from collector_server.enrollments.models import Enrollment
    from collector_server.orgs.models import ApiToken, Membership, Organization

    audit.register(AlertRule, exclude=("updated_at",))
    audit.register(
        Channel, exclude=("suppressed_count", "status", "last_error"), maskers={"config": mask_channel_config}
    )
    audit.register(Silence)
    audit.register(Membership)
    audit.register(ApiToken, secret_fields=("key_hash",), exclude=("last_used_at",))
    audit.register(Organization)
    audit.register(Route)
    audit.register(EscalationPolicy)
    audit.register(EscalationStep)
    # The salts derive the agents' secrets: never in the trail.
    audit.register(Enrollment, secret_fields=("salt", "previous_salt"))
