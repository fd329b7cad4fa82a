"""A 5-minute rollup level (additive): same columns and meaning as the 1-minute and 1-hour levels.

Queries with a step of whole 5 minutes over more than 6 hours (a day at step=5m, the edges of a
day's summary) read 5x fewer rows than from the 1-minute rollups. The rollup job fills it from
the 1-minute rollups (alerting_worker.maintenance.rollups); partitions are daily, kept as long
as the 1-minute level's (ROLLUP_1M_RETENTION_DAYS).
"""

from django.db import migrations

SQL = """
CREATE TABLE monitoring_rollup_5m (LIKE monitoring_rollup_1m INCLUDING DEFAULTS)
    PARTITION BY RANGE (bucket);
ALTER TABLE monitoring_rollup_5m ADD PRIMARY KEY (series_id, bucket);
"""

REVERSE = "DROP TABLE IF EXISTS monitoring_rollup_5m CASCADE;"


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0003_organizations")]
    operations = [migrations.RunSQL(SQL, REVERSE)]
