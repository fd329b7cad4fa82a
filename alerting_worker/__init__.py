"""RQ workers: ingest, rollups, retention, alert evaluation and notifications."""
