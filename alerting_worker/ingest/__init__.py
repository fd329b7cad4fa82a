"""Drain the Redis streams into Postgres: at-least-once delivery, exactly-once effect."""
