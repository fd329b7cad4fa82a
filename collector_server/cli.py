"""Console entry points: fleetwatch-server, fleetwatch-migrate, fleetwatch-manage."""

from __future__ import annotations

import argparse
import importlib
import os
import sys


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "collector_server.settings")
    import django

    django.setup()


def manage_main(argv: list[str] | None = None) -> int:
    """Run a Django management command."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "collector_server.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["fleetwatch-manage", *(sys.argv[1:] if argv is None else argv)])
    return 0


def migrate_main(argv: list[str] | None = None) -> int:
    """Apply migrations, create partitions ahead and the default notification channels."""
    parser = argparse.ArgumentParser(prog="fleetwatch-migrate", description=migrate_main.__doc__)
    parser.parse_args(argv)
    _django()
    from django.core.management import call_command

    from collector_server.monitoring import partitions

    call_command("migrate", interactive=False, verbosity=1)
    created = partitions.ensure_ahead()
    print(f"partitions ready: {len(created)}")
    for dotted in ("collector_server.alerts.defaults.ensure_default_channels",):
        module, _, attr = dotted.rpartition(".")
        try:
            func = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            continue
        func()
    if os.environ.get("FLEETWATCH_ADMIN_PASSWORD"):
        call_command("bootstrap_admin")
    return 0


def server_main(argv: list[str] | None = None) -> int:
    """Serve the API, admin and dashboard (gunicorn; --dev for Django's runserver)."""
    parser = argparse.ArgumentParser(prog="fleetwatch-server", description=server_main.__doc__)
    parser.add_argument("--bind", default=os.environ.get("FLEETWATCH_BIND", "0.0.0.0:8000"))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "2")))
    parser.add_argument("--dev", action="store_true", help="Django's runserver (local use only)")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "collector_server.settings")
    if args.dev:
        from django.core.management import execute_from_command_line

        execute_from_command_line(["fleetwatch-server", "runserver", "--noreload", args.bind])
        return 0
    _django()  # fail fast on bad settings before gunicorn forks
    gunicorn_args = [
        "gunicorn",
        "collector_server.wsgi:application",
        "--bind",
        args.bind,
        "--workers",
        str(args.workers),
        "--access-logfile",
        "-",
        "--timeout",
        "60",
    ]
    os.execvp(sys.executable, [sys.executable, "-m", *gunicorn_args])
    return 0
