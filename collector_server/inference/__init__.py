"""LLM inference monitoring: price table, budgets, the inference write endpoint and the models API."""
