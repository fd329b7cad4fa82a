"""The 5-minute rollups keep the same edges as the 1-minute and 1-hour ones (0004_promql_speed_rollup_edges).

With them the PromQL engine answers range functions over windows of whole 5 minutes at steps of
whole 5 minutes exactly from 5x fewer rows (a week at a 10-minute step). Buckets already rolled
up get their edges from their 1-minute buckets here, as the rollup job computes them (none when
a minute has none).
"""

from django.db import migrations

COLUMNS = (
    "ADD COLUMN IF NOT EXISTS first_ts timestamptz, ADD COLUMN IF NOT EXISTS first double precision, "
    "ADD COLUMN IF NOT EXISTS last_ts timestamptz, ADD COLUMN IF NOT EXISTS resets double precision, "
    "ADD COLUMN IF NOT EXISTS first_reset double precision"
)
DROP = (
    "DROP COLUMN IF EXISTS first_ts, DROP COLUMN IF EXISTS first, DROP COLUMN IF EXISTS last_ts, "
    "DROP COLUMN IF EXISTS resets, DROP COLUMN IF EXISTS first_reset"
)
BACKFILL = """
UPDATE monitoring_rollup_5m f
SET first_ts = m.first_ts, first = m.first, last_ts = m.last_ts, resets = m.resets, first_reset = m.first_reset
FROM (
    SELECT series_id, date_bin('5 minutes', bucket, 'epoch'::timestamptz) AS five,
           CASE WHEN count(first_ts) = count(*) THEN min(first_ts) END AS first_ts,
           CASE WHEN count(first_ts) = count(*) THEN (array_agg(first ORDER BY bucket))[1] END AS first,
           CASE WHEN count(first_ts) = count(*) THEN max(last_ts) END AS last_ts,
           CASE WHEN count(first_ts) = count(*) THEN sum(resets) END AS resets,
           CASE WHEN count(first_ts) = count(*) THEN (array_agg(first_reset ORDER BY bucket))[1] END
               AS first_reset
    FROM monitoring_rollup_1m GROUP BY 1, 2
) m
WHERE f.series_id = m.series_id AND f.bucket = m.five AND f.first_ts IS NULL
"""


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0005_merge_rollup_5m_and_edges")]

    operations = [
        migrations.RunSQL(
            sql=f"ALTER TABLE monitoring_rollup_5m {COLUMNS}; {BACKFILL}",
            reverse_sql=f"ALTER TABLE monitoring_rollup_5m {DROP};",
        )
    ]
