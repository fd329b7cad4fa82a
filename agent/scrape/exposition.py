"""Turn a Prometheus text exposition into wire-format series (prometheus_client's parser)."""

from __future__ import annotations

import math
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from agent.scrape.config import ScrapeTarget
from shared.wire import COUNTER, GAUGE, LABEL_NAME_RE, METRIC_NAME_RE

# Sample names of these family types that only go up.
CUMULATIVE_SUFFIXES = ("_total", "_count", "_sum", "_bucket", "_created")


def _kind(family_type: str, sample_name: str) -> str:
    if family_type == "counter" or (family_type == "unknown" and sample_name.endswith("_total")):
        return COUNTER
    if family_type in ("histogram", "summary") and sample_name.endswith(CUMULATIVE_SUFFIXES[1:4]):
        return COUNTER
    return GAUGE


def to_series(text: str, target: ScrapeTarget, now: float) -> tuple[list[dict[str, Any]], int]:
    """Return (series, samples skipped): every finite sample, with the target's labels.

    An exporter's own `host`, `job` or `instance` label is kept as `exported_<name>`, as
    Prometheus does without honor_labels. Raises ValueError when the text does not parse.
    """
    series: list[dict[str, Any]] = []
    skipped = 0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_created") or not math.isfinite(sample.value):
                skipped += 1  # creation times and NaN quantiles carry no sample to store
                continue
            if not METRIC_NAME_RE.match(sample.name):
                skipped += 1
                continue
            labels = {}
            for key, value in sample.labels.items():
                if key in ("host", "job", "instance"):
                    key = f"exported_{key}"
                if LABEL_NAME_RE.match(key) and value != "":
                    labels[key] = value
            labels.update(target.labels)
            labels["job"] = target.name
            labels["instance"] = target.instance
            ts = sample.timestamp if sample.timestamp is not None else now
            series.append(
                {
                    "name": sample.name,
                    "type": _kind(family.type, sample.name),
                    "labels": labels,
                    "points": [[float(ts), float(sample.value)]],
                }
            )
    return series, skipped
