from __future__ import annotations

# Fixtures of other areas used here too: the ingest tables and the deployment renderers.
from tests.agent.conftest import private_redis  # noqa: F401
from tests.deploy.conftest import chart, compose, render  # noqa: F401
from tests.ingest.conftest import clean_tables, metrics_stream  # noqa: F401
