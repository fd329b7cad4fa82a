"""The operator's web UI: server-rendered pages, uPlot charts and the chart-data endpoints they read."""
