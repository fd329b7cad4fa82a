from __future__ import annotations

from tests.ingest.conftest import clean_tables, metrics_stream  # noqa: F401 - fixtures used here too
