"""Periodic upkeep: rollups, partitions, retention, stream trimming."""
