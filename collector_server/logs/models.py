"""Log entries, stored in a table partitioned by day on ts (created in migration 0001).

Django sees the table as an unmanaged model with the composite primary key
(ts, id); id comes from a sequence, so (ts, id) orders rows for cursor pagination.
"""

from __future__ import annotations

from django.db import models

from collector_server.logs import levels
from collector_server.monitoring import partitions
from collector_server.orgs.scope import OrgManager

LOGS_PARTITIONS = partitions.register("logs_entry", partitions.DAY, "LOG_RETENTION_DAYS")


class LogEntry(models.Model):
    """One log record from one host."""

    LEVEL_CHOICES = [(name, name) for name in levels.LEVELS]

    pk = models.CompositePrimaryKey("ts", "id")
    id = models.BigIntegerField()
    ts = models.DateTimeField()
    host = models.TextField()
    organization_id = models.IntegerField(
        help_text="The organisation (no foreign key on the partitioned table)."
    )
    service = models.TextField(blank=True)
    level = models.CharField(max_length=10, choices=LEVEL_CHOICES)
    level_no = models.SmallIntegerField()
    message = models.TextField()
    logger = models.TextField(blank=True)
    request_id = models.TextField(null=True, blank=True)
    trace_id = models.TextField(null=True, blank=True)
    span_id = models.TextField(null=True, blank=True)
    attrs = models.JSONField(default=dict)

    objects = OrgManager("organization_id")

    class Meta:
        managed = False
        db_table = "logs_entry"
        verbose_name_plural = "log entries"
        ordering = ["-ts", "-id"]

    def __str__(self) -> str:
        return f"{self.ts:%Y-%m-%d %H:%M:%S} {self.host} {self.level} {self.message[:80]}"
