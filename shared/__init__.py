"""Code used by more than one component: wire format, settings helpers, redaction.

Nothing in this package may import Django: the agent depends on it.
"""
