"""Configure Django once for worker and scheduler processes."""

from __future__ import annotations

import os


def setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "collector_server.settings")
    import django

    django.setup()
