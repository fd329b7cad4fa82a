"""The Django + DRF server: REST API, admin, dashboard and Prometheus endpoint."""
