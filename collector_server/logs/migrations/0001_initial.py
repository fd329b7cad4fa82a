"""Create logs_entry, partitioned by day on ts, with the indexes the searches use.

Index per search (see docs/logs.md for their measured ingest cost):
time range and cursor pages -> primary key (ts, id); level/min_level -> (level_no, ts);
service, host -> (service, ts), (host, ts); request and trace ids -> partial btrees;
regex and substring on message -> pg_trgm GIN; words -> full-text GIN on
to_tsvector('simple', message); attribute filters -> GIN (attrs jsonb_path_ops).
The GIN indexes take a 64 MB pending list (default 4 MB): new entries are merged into the
index in bigger, cheaper steps (by autovacuum or when the list fills), which about halves
their cost on the ingest path; searches scan the pending list until it is merged.
Partitions are created ahead by monitoring.partitions (the table registers in logs.models).
"""

from django.db import migrations, models


SQL = """
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE SEQUENCE IF NOT EXISTS logs_entry_id_seq AS bigint;
CREATE TABLE logs_entry (
    id bigint NOT NULL DEFAULT nextval('logs_entry_id_seq'),
    ts timestamptz NOT NULL,
    host text NOT NULL,
    service text NOT NULL DEFAULT '',
    level varchar(10) NOT NULL,
    level_no smallint NOT NULL,
    message text NOT NULL,
    logger text NOT NULL DEFAULT '',
    request_id text,
    trace_id text,
    span_id text,
    attrs jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (ts, id)
) PARTITION BY RANGE (ts);
ALTER SEQUENCE logs_entry_id_seq OWNED BY logs_entry.id;
CREATE INDEX logs_entry_level_ts ON logs_entry (level_no, ts);
CREATE INDEX logs_entry_service_ts ON logs_entry (service, ts);
CREATE INDEX logs_entry_host_ts ON logs_entry (host, ts);
CREATE INDEX logs_entry_request_id ON logs_entry (request_id) WHERE request_id IS NOT NULL;
CREATE INDEX logs_entry_trace_id ON logs_entry (trace_id) WHERE trace_id IS NOT NULL;
CREATE INDEX logs_entry_message_trgm ON logs_entry USING gin (message gin_trgm_ops)
    WITH (gin_pending_list_limit = 65536);
CREATE INDEX logs_entry_message_fts ON logs_entry USING gin (to_tsvector('simple'::regconfig, message))
    WITH (gin_pending_list_limit = 65536);
CREATE INDEX logs_entry_attrs ON logs_entry USING gin (attrs jsonb_path_ops)
    WITH (gin_pending_list_limit = 65536);
"""

REVERSE = """
DROP TABLE IF EXISTS logs_entry CASCADE;
DROP SEQUENCE IF EXISTS logs_entry_id_seq;
"""


class Migration(migrations.Migration):

    initial = True

    dependencies = [
    ]

    operations = [
        migrations.RunSQL(SQL, REVERSE),
        migrations.CreateModel(
            name='LogEntry',
            fields=[
                ('pk', models.CompositePrimaryKey('ts', 'id', blank=True, editable=False, primary_key=True, serialize=False)),
                ('id', models.BigIntegerField()),
                ('ts', models.DateTimeField()),
                ('host', models.TextField()),
                ('service', models.TextField(blank=True)),
                ('level', models.CharField(choices=[('DEBUG', 'DEBUG'), ('INFO', 'INFO'), ('WARNING', 'WARNING'), ('ERROR', 'ERROR'), ('CRITICAL', 'CRITICAL')], max_length=10)),
                ('level_no', models.SmallIntegerField()),
                ('message', models.TextField()),
                ('logger', models.TextField(blank=True)),
                ('request_id', models.TextField(blank=True, null=True)),
                ('trace_id', models.TextField(blank=True, null=True)),
                ('span_id', models.TextField(blank=True, null=True)),
                ('attrs', models.JSONField(default=dict)),
            ],
            options={
                'verbose_name_plural': 'log entries',
                'db_table': 'logs_entry',
                'ordering': ['-ts', '-id'],
                'managed': False,
            },
        ),
    ]
