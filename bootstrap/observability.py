"""Logging as the settings ask (format, level), and a worker's own metrics server."""

from __future__ import annotations

import logging

from adapters.observability.log_format import configure_logging as _configure
from adapters.observability.metrics import MetricsServer
from bootstrap.container import Container
from bootstrap.settings import Settings

log = logging.getLogger("taskq")


def configure_logging(settings: Settings) -> None:
    """Log to stderr at ``TASKQ_LOG_LEVEL`` in ``TASKQ_LOG_FORMAT`` (json or text)."""
    _configure(settings.log_level, settings.log_format)


def serve_worker_metrics(container: Container) -> MetricsServer | None:
    """Serve the process's own metrics on ``TASKQ_METRICS_PORT`` (None: not set)."""
    settings = container.settings()
    if settings.metrics_port is None:
        return None
    container.process_metrics()  # the flow limits, this worker's deferrals, its SQLite lock
    try:
        server = container.worker_metrics().serve(settings.metrics_host, settings.metrics_port)
    except OSError as exc:
        raise SystemExit(
            f"taskq: cannot serve metrics on {settings.metrics_host}:{settings.metrics_port}: "
            f"{exc.strerror or exc} (TASKQ_METRICS_PORT, --metrics-port)"
        ) from None
    log.info("metrics on http://%s:%d/metrics", settings.metrics_host, server.port)
    return server
