"""Who may do what in the UI: the one place role checks live.

Today a user may act (acknowledge, resolve, silence, edit rules) when they are staff or hold
the alerts.change_alert permission; everyone logged in may look. When organisations bring
roles (viewer, operator, admin), only ``can_operate`` changes: every template and page script
reads the ``can_operate`` flag this module puts in the context.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

OPERATE_PERMISSION = "alerts.change_alert"


def can_operate(user: Any) -> bool:
    """Return whether `user` may act on alerts, silences and rules."""
    if not getattr(user, "is_authenticated", False):
        return False
    return bool(user.is_staff or user.has_perm(OPERATE_PERMISSION))


def context(request: HttpRequest) -> dict[str, Any]:
    """Template context processor: ``can_operate`` for the current user."""
    return {"can_operate": can_operate(getattr(request, "user", None))}
