"""Prometheus-compatible interfaces: the HTTP query API (PromQL), remote write, federation, OTLP."""
