"""The throwaway database a benchmark runs in: psql as the postgres user, create + migrate, drop.

Each benchmark sets DATABASE_URL to its own database name before Django is set up, so it never
touches another database.
"""

from __future__ import annotations

import subprocess


def psql(sql: str, db: str = "postgres") -> None:
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-qc", sql], check=True, capture_output=True
    )


def create(name: str) -> None:
    """(Re)create the database and migrate it (DATABASE_URL must already name it)."""
    psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    psql(f"CREATE DATABASE {name}")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def drop(name: str) -> None:
    from django.db import connections

    connections.close_all()
    psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
