"""Observing the service: Prometheus metrics and structured logs of task events."""
