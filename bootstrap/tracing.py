"""Tracing on or off: the ``Tracer`` the use cases get, and the HTTP instrumentation.

Tracing is on when ``OTEL_TRACES_EXPORTER`` names an exporter, ``OTEL_SDK_DISABLED``
is not true and the ``task-queue-engine[otel]`` extra is installed. Otherwise the
tracer is ``NoTracer`` and nothing of OpenTelemetry is imported: the adapter module is
imported here, lazily, only when tracing is on.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, distribution
from typing import TYPE_CHECKING

from bootstrap.settings import Settings
from domain.ports import Tracer
from domain.tracing import NoTracer

if TYPE_CHECKING:
    from starlette.applications import Starlette

log = logging.getLogger("taskq.tracing")

OTEL_EXTRA = (
    "opentelemetry-sdk",
    "opentelemetry-instrumentation-starlette",
    "opentelemetry-instrumentation-botocore",
)
"""The distributions tracing needs (pyproject.toml's ``otel`` extra)."""


def missing_otel_packages() -> list[str]:
    """The extra's distributions that are not installed, or all of them when the
    ``opentelemetry`` package cannot be imported (looked up without importing it)."""
    if importlib.util.find_spec("opentelemetry") is None:
        return list(OTEL_EXTRA)
    missing = []
    for name in OTEL_EXTRA:
        try:
            distribution(name)
        except PackageNotFoundError:
            missing.append(name)
    return missing


def open_tracer(settings: Settings) -> Iterator[Tracer]:
    """The container's tracer resource: OpenTelemetry's while tracing is on (flushed
    at shutdown), else ``NoTracer``."""
    exporters = settings.trace_exporters
    missing = missing_otel_packages() if exporters else []
    if missing:
        log.warning(
            "OTEL_TRACES_EXPORTER is %r but %s is not installed "
            "(pip install 'task-queue-engine[otel]'): tracing is off",
            settings.otel_traces_exporter,
            ", ".join(missing),
        )
    if not exporters or missing:
        yield NoTracer()
        return
    from adapters.observability.tracing import open_tracing

    with open_tracing(exporters) as tracer:
        yield tracer


def instrument_http(app: Starlette, tracer: Tracer) -> None:
    """Give ``app`` a server span per request when ``tracer`` is OpenTelemetry's."""
    if isinstance(tracer, NoTracer):
        return
    from adapters.observability.tracing import OtelTracer

    if isinstance(tracer, OtelTracer):
        tracer.instrument_app(app)
