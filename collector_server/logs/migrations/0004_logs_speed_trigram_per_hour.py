"""The trigram index leaves the ingest path: built per closed hour and per closed day.

Drops the parent's GIN (message gin_trgm_ops) index (which Postgres maintained row by row in
every partition, about 12 us of the database's 28 us a row) and gives every partition that exists
now its own whole-partition trigram index, so searches over stored records keep their index.
Partitions created from now on get theirs from collector_server.logs.trigram_index.build_closed
(a maintenance job): a partial index per closed hour while the day is open, one index once the
day is over. On a large existing table this migration rebuilds the index once per partition.
"""

from __future__ import annotations

from django.db import migrations

OPS = "USING gin (message gin_trgm_ops) WITH (gin_pending_list_limit = 65536)"


def _partitions(cursor) -> list[str]:
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'logs_entry'::regclass ORDER BY 1"
    )
    return [row[0] for row in cursor.fetchall()]


def forwards(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS logs_entry_message_trgm")
        for name in _partitions(cursor):
            cursor.execute(f'CREATE INDEX IF NOT EXISTS "{name}_trgm" ON "{name}" {OPS}')


def backwards(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
            "JOIN pg_inherits i ON i.inhrelid = x.indrelid WHERE i.inhparent = 'logs_entry'::regclass "
            "AND c.relname LIKE '%%\\_trgm%%'"
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP INDEX IF EXISTS "{name}"')
        cursor.execute(f"CREATE INDEX IF NOT EXISTS logs_entry_message_trgm ON logs_entry {OPS}")


class Migration(migrations.Migration):
    dependencies = [("logs", "0003_organization")]

    operations = [migrations.RunPython(forwards, backwards)]
