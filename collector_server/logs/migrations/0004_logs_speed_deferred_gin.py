"""The GIN indexes (trigram on message, jsonb_path_ops on attrs) leave the ingest path.

Drops the parent's two GIN indexes (which Postgres maintained row by row in every partition: the
trigram one about 12 us of the database's 28 us a row, the attrs one a few more) and gives every
partition that exists now its own whole-partition indexes, so searches over stored records keep
them. Partitions created from now on get theirs from
collector_server.logs.deferred_index.build_closed (a maintenance job): a partial index per closed
hour while the day is open, one index once the day is over. On a large existing table this
migration rebuilds both indexes once per partition.
"""

from __future__ import annotations

from django.db import migrations

KINDS = {
    "trgm": "USING gin (message gin_trgm_ops) WITH (gin_pending_list_limit = 65536)",
    "attrs": "USING gin (attrs jsonb_path_ops) WITH (gin_pending_list_limit = 65536)",
}
PARENT = {"trgm": "logs_entry_message_trgm", "attrs": "logs_entry_attrs"}


def _partitions(cursor) -> list[str]:
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'logs_entry'::regclass ORDER BY 1"
    )
    return [row[0] for row in cursor.fetchall()]


def forwards(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for kind, ops in KINDS.items():
            cursor.execute(f"DROP INDEX IF EXISTS {PARENT[kind]}")
            for name in _partitions(cursor):
                cursor.execute(f'CREATE INDEX IF NOT EXISTS "{name}_{kind}" ON "{name}" {ops}')


def backwards(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for name in _partitions(cursor):
            for kind in KINDS:
                cursor.execute(f'DROP INDEX IF EXISTS "{name}_{kind}"')
                for hour in range(24):
                    cursor.execute(f'DROP INDEX IF EXISTS "{name}_{kind}_h{hour:02d}"')
        for kind, ops in KINDS.items():
            cursor.execute(f"CREATE INDEX IF NOT EXISTS {PARENT[kind]} ON logs_entry {ops}")


class Migration(migrations.Migration):
    dependencies = [("logs", "0003_organization")]

    operations = [migrations.RunPython(forwards, backwards)]
