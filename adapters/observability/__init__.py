"""What an operator sees of the engine: traces (``tracing``), with OpenTelemetry."""
