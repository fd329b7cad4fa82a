"""Rollup buckets keep their edges: the first and last sample's time, the first value, resets.

With them a window made of whole buckets gives exactly what Prometheus computes from the raw
samples of that window (first and last sample, their times, the count, counter resets):
rate, increase and delta with Prometheus' extrapolation, and the *_over_time functions
(docs/prometheus.md, "Where the data comes from"). The columns are additive and nullable:
buckets rolled up before this migration have none, and the PromQL engine reads such buckets
the way it did before (documented as approximate).

* first_ts, first: the bucket's first sample; last_ts: its last sample's time (last is the value).
* resets: the sum of the previous sample's value over the counter resets whose later sample is
  in the bucket (Prometheus' correction: increase = last - first + resets), for every kind.
* first_reset: that term for the bucket's first sample alone (its pair with the sample before).
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


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0003_organizations")]

    operations = [
        migrations.RunSQL(
            sql=f"ALTER TABLE monitoring_rollup_1m {COLUMNS}; ALTER TABLE monitoring_rollup_1h {COLUMNS};",
            reverse_sql=f"ALTER TABLE monitoring_rollup_1m {DROP}; ALTER TABLE monitoring_rollup_1h {DROP};",
        )
    ]
