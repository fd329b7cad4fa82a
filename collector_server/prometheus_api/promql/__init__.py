"""A PromQL evaluator over fleetwatch's storage (parsing by promql-parser)."""
