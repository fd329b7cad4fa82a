"""Drop the full-text GIN index: word search (q=) now goes through the trigram index.

The full-text index cost about +15 us per ingested row (docs/logs.md, "Figures"). Word search
keeps its meaning (``to_tsvector('simple', message) @@ websearch_to_tsquery('simple', q)``
decides every match) but finds its candidate rows with ``message ILIKE '%word%'`` conditions,
which the trigram index serves; see collector_server/logs/search.py.
"""

from __future__ import annotations

from django.db import migrations

SQL = "DROP INDEX IF EXISTS logs_entry_message_fts;"

REVERSE = """
CREATE INDEX IF NOT EXISTS logs_entry_message_fts ON logs_entry
    USING gin (to_tsvector('simple'::regconfig, message)) WITH (gin_pending_list_limit = 65536);
"""


class Migration(migrations.Migration):
    dependencies = [("logs", "0001_initial")]

    operations = [migrations.RunSQL(SQL, REVERSE)]
