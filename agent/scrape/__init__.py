"""Scrape Prometheus exporters (an app's /api/metrics, node_exporter, DCGM) and ship their samples."""
