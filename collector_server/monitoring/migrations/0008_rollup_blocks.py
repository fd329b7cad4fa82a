"""Rollup blocks: each series' sealed buckets, a span at a time, packed for the PromQL engine.

One table per level (monitoring_block_1m, _5m, _1h), partitioned like the level (a partition
for each of the level's, same bounds, same retention), its bytea stored inline and
uncompressed (STORAGE PLAIN). Nothing is packed here: the rollup job packs the blocks, under
its lock, from the seal point backwards (a day of 1-minute buckets a run), and starts again
from the seal point when a rollup ran that did not keep them (a worker of the previous version
still running after this migration, during a rolling deploy). See collector_server/prometheus_api/promql/rollup_blocks.py.
"""

from django.db import migrations

LEVELS = {"1m": 3600, "5m": 14400, "1h": 86400}  # rollup_blocks.SPAN_SECONDS

CREATE = "".join(
    f"""
CREATE TABLE IF NOT EXISTS monitoring_block_{level} (
    series_id bigint NOT NULL,
    start timestamptz NOT NULL,
    records bytea NOT NULL,
    PRIMARY KEY (series_id, start)
) PARTITION BY RANGE (start);
ALTER TABLE monitoring_block_{level} ALTER COLUMN records SET STORAGE PLAIN;
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound
             FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'monitoring_rollup_{level}'
    LOOP
        EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF monitoring_block_{level} %s',
                       replace(r.relname, '_rollup_', '_block_'), r.bound);
    END LOOP;
END $$;
"""
    for level in LEVELS
)
REVERSE = "DELETE FROM monitoring_rollupstate WHERE level LIKE '%:block' OR level LIKE '%:bfrom' OR level LIKE '%:bseen';\n" + "".join(
    f"DROP TABLE IF EXISTS monitoring_block_{level} CASCADE;\n" for level in LEVELS
)


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0007_query_speed_covering_rollup_indexes")]
    operations = [migrations.RunSQL(CREATE, REVERSE)]
