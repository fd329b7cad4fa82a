"""Hosts, series, samples and rollups.

Samples and rollups live in tables partitioned by time (declarative partitioning,
created in migration 0002); Django sees them as unmanaged models with a composite
primary key so the ORM and the admin can read them.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from collector_server.orgs.scope import OrgManager, organization_field


class Host(models.Model):
    """A machine running an agent, identified by the agent's id."""

    agent_id = models.CharField(max_length=200, unique=True)
    organization = organization_field()
    hostname = models.CharField(max_length=255, db_index=True)
    labels = models.JSONField(default=dict, blank=True)
    agent_version = models.CharField(max_length=50, blank=True)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now, db_index=True)

    objects = OrgManager()

    class Meta:
        ordering = ["hostname"]

    def __str__(self) -> str:
        return self.hostname

    @property
    def is_up(self) -> bool:
        limit = timedelta(seconds=settings.HOST_DOWN_AFTER_SECONDS)
        return timezone.now() - self.last_seen <= limit

    @classmethod
    def up_cutoff(cls):
        return timezone.now() - timedelta(seconds=settings.HOST_DOWN_AFTER_SECONDS)


class Series(models.Model):
    """One metric name with one set of labels (the host label included)."""

    GAUGE = "gauge"
    COUNTER = "counter"
    KIND_CHOICES = [(GAUGE, "gauge"), (COUNTER, "counter")]

    name = models.CharField(max_length=200, db_index=True)
    kind = models.CharField(max_length=10, choices=KIND_CHOICES, default=GAUGE)
    labels = models.JSONField(default=dict)
    labels_key = models.TextField(help_text="Canonical 'k=v,k=v' form of the labels, for uniqueness.")
    host = models.ForeignKey(Host, null=True, blank=True, on_delete=models.SET_NULL, related_name="series")
    organization = organization_field()
    created_at = models.DateTimeField(default=timezone.now)

    objects = OrgManager()

    class Meta:
        verbose_name_plural = "series"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name", "labels_key"], name="series_org_name_labels_uniq"
            )
        ]
        indexes = [models.Index(fields=["host", "name"])]

    def __str__(self) -> str:
        return f"{self.name}{{{self.labels_key}}}"


class Sample(models.Model):
    """A raw point. Partitioned by day on ts (see monitoring.partitions)."""

    pk = models.CompositePrimaryKey("series_id", "ts")
    series = models.ForeignKey(Series, on_delete=models.DO_NOTHING, db_constraint=False)
    ts = models.DateTimeField()
    value = models.FloatField()

    class Meta:
        managed = False
        db_table = "monitoring_sample"


class RollupBase(models.Model):
    pk = models.CompositePrimaryKey("series_id", "bucket")
    series = models.ForeignKey(Series, on_delete=models.DO_NOTHING, db_constraint=False)
    bucket = models.DateTimeField()
    min = models.FloatField()
    max = models.FloatField()
    sum = models.FloatField()
    count = models.IntegerField()
    last = models.FloatField()
    increase = models.FloatField(null=True, help_text="Counter increase within the bucket, resets handled.")
    # The bucket's edges (migration 0004_promql_speed_rollup_edges; empty in older buckets): with
    # them whole-bucket windows give Prometheus' exact rate/increase/delta (prometheus_api.promql).
    first_ts = models.DateTimeField(null=True, help_text="Time of the bucket's first sample.")
    first = models.FloatField(null=True, help_text="Value of the bucket's first sample.")
    last_ts = models.DateTimeField(null=True, help_text="Time of the bucket's last sample.")
    resets = models.FloatField(
        null=True, help_text="Sum of the values before each counter reset in the bucket."
    )
    first_reset = models.FloatField(null=True, help_text="That sum for the bucket's first sample alone.")

    class Meta:
        abstract = True
        managed = False

    @property
    def avg(self) -> float:
        return self.sum / self.count if self.count else 0.0


class Rollup1m(RollupBase):
    class Meta(RollupBase.Meta):
        db_table = "monitoring_rollup_1m"
        verbose_name = "rollup (1 minute)"
        verbose_name_plural = "rollups (1 minute)"


class Rollup1h(RollupBase):
    class Meta(RollupBase.Meta):
        db_table = "monitoring_rollup_1h"
        verbose_name = "rollup (1 hour)"
        verbose_name_plural = "rollups (1 hour)"


class IngestedBatch(models.Model):
    """The identity of every stored batch; written in the same transaction as its rows."""

    pk = models.CompositePrimaryKey("agent_id", "epoch", "seq", "kind")
    agent_id = models.CharField(max_length=200)
    epoch = models.BigIntegerField()
    seq = models.BigIntegerField()
    kind = models.CharField(max_length=10)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    rows = models.IntegerField(default=0)

    class Meta:
        verbose_name_plural = "ingested batches"


class RollupState(models.Model):
    """How far each rollup level has been computed."""

    level = models.CharField(max_length=10, primary_key=True)
    done_until = models.DateTimeField()
