"""Create the time-partitioned tables behind Sample, Rollup1m and Rollup1h.

Partitions themselves are created ahead of time by monitoring.partitions
(run by `fleetwatch-migrate` and by the scheduler's periodic job).
"""

from django.db import migrations

SQL = """
CREATE TABLE monitoring_sample (
    series_id bigint NOT NULL,
    ts timestamptz NOT NULL,
    value double precision NOT NULL
) PARTITION BY RANGE (ts);
CREATE INDEX monitoring_sample_series_ts ON monitoring_sample (series_id, ts);

CREATE TABLE monitoring_rollup_1m (
    series_id bigint NOT NULL,
    bucket timestamptz NOT NULL,
    min double precision NOT NULL,
    max double precision NOT NULL,
    sum double precision NOT NULL,
    count integer NOT NULL,
    last double precision NOT NULL,
    increase double precision,
    PRIMARY KEY (series_id, bucket)
) PARTITION BY RANGE (bucket);

CREATE TABLE monitoring_rollup_1h (LIKE monitoring_rollup_1m INCLUDING DEFAULTS)
    PARTITION BY RANGE (bucket);
ALTER TABLE monitoring_rollup_1h ADD PRIMARY KEY (series_id, bucket);
"""

REVERSE = """
DROP TABLE IF EXISTS monitoring_sample CASCADE;
DROP TABLE IF EXISTS monitoring_rollup_1m CASCADE;
DROP TABLE IF EXISTS monitoring_rollup_1h CASCADE;
"""


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0001_initial")]
    operations = [migrations.RunSQL(SQL, REVERSE)]
