"""What an operator sees of the engine: Prometheus metrics and structured logs of task
events (``metrics``, ``task_log``), and traces with OpenTelemetry (``tracing``)."""
