"""The ``Tracer`` port on OpenTelemetry (the ``task-queue-engine[otel]`` extra).

Only bootstrap/tracing.py imports this module, and only when tracing is switched on
(``OTEL_TRACES_EXPORTER`` names an exporter): without the extra, or with it switched
off, nothing of OpenTelemetry is imported.

The trace context travels with the task (``Task.traceparent``), not in the queue
message: it survives a retry, a redelivery and a redrive, and every backend keeps it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import entry_points

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
from opentelemetry.instrumentation.starlette import StarletteInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.applications import Starlette

from domain.models import Task

SERVICE_NAME = "task-queue-engine"
"""The ``service.name`` of the spans unless ``OTEL_SERVICE_NAME`` (or
``OTEL_RESOURCE_ATTRIBUTES``) names another."""
INSTRUMENTATION_NAME = "taskq"
EXPORTER_ENTRY_POINTS = "opentelemetry_traces_exporter"
"""Where OpenTelemetry packages register their span exporters by name (``console``
comes with the SDK, ``otlp`` with opentelemetry-exporter-otlp-proto-http)."""

_W3C = TraceContextTextMapPropagator()


class OtelTracer:
    """Run spans on ``provider``; the submitter's side reads the current span."""

    def __init__(self, provider: trace.TracerProvider) -> None:
        self.provider = provider
        self._tracer = provider.get_tracer(INSTRUMENTATION_NAME)

    def current_traceparent(self) -> str | None:
        carrier: dict[str, str] = {}
        _W3C.inject(carrier)  # injects nothing when no valid span is current
        return carrier.get("traceparent")

    @contextmanager
    def run_span(self, task: Task) -> Iterator[None]:
        # No stored context: a root, not a child of whatever the worker was doing.
        parent = _W3C.extract({"traceparent": task.traceparent}) if task.traceparent else Context()
        with self._tracer.start_as_current_span(
            f"run {task.type}",
            context=parent,
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "taskq.task.id": task.id,
                "taskq.task.type": task.type,
                "taskq.task.attempt": task.attempts,
            },
        ):
            yield

    def instrument_app(self, app: Starlette) -> None:
        """A server span for every request ``app`` serves (route template as name),
        continuing the trace of an incoming ``traceparent``."""
        StarletteInstrumentor.instrument_app(app, tracer_provider=self.provider)

    @contextmanager
    def instrumenting_botocore(self) -> Iterator[None]:
        """A client span for every AWS call (the SQS and DynamoDB adapters', and a
        handler's own) while open; botocore is patched once per process."""
        instrumentor = BotocoreInstrumentor()  # type: ignore[no-untyped-call]  # untyped package
        if instrumentor.is_instrumented_by_opentelemetry:
            yield
            return
        instrumentor.instrument(tracer_provider=self.provider)
        try:
            yield
        finally:
            instrumentor.uninstrument()


def exporter(name: str) -> SpanExporter:
    """The span exporter registered as ``name``, built from its ``OTEL_EXPORTER_*``
    variables. Raises ``ValueError`` naming the installed ones if there is none."""
    found = list(entry_points(group=EXPORTER_ENTRY_POINTS, name=name))
    if not found:
        installed = sorted(point.name for point in entry_points(group=EXPORTER_ENTRY_POINTS))
        raise ValueError(
            f"OTEL_TRACES_EXPORTER names {name!r}, which is not installed "
            f"(installed: {', '.join(installed) or 'none'})"
        )
    made = found[0].load()()
    if not isinstance(made, SpanExporter):
        raise ValueError(f"OTEL_TRACES_EXPORTER {name!r} is not a span exporter")
    return made


def provider_from_environment(exporter_names: list[str]) -> TracerProvider:
    """A provider configured as the OpenTelemetry SDK reads the environment: resource
    (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``), sampler
    (``OTEL_TRACES_SAMPLER``), batching (``OTEL_BSP_*``), one exporter per name."""
    attributes = {}
    named = "service.name=" in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    if not os.environ.get("OTEL_SERVICE_NAME") and not named:
        attributes["service.name"] = SERVICE_NAME
    provider = TracerProvider(resource=Resource.create(attributes))
    for name in exporter_names:
        provider.add_span_processor(BatchSpanProcessor(exporter(name)))
    return provider


@contextmanager
def open_tracing(exporter_names: list[str]) -> Iterator[OtelTracer]:
    """Tracing for this process, flushed when closed.

    The provider is the global one when a program set one already (the
    ``opentelemetry-instrument`` launcher, an application embedding the engine);
    otherwise one is made from the environment and made global, so a handler's own
    spans join the run span, and closing flushes and shuts it down.
    """
    existing = trace.get_tracer_provider()
    if not isinstance(existing, trace.ProxyTracerProvider):
        tracer = OtelTracer(existing)
        with tracer.instrumenting_botocore():
            yield tracer
        return
    provider = provider_from_environment(exporter_names)
    trace.set_tracer_provider(provider)
    tracer = OtelTracer(provider)
    try:
        with tracer.instrumenting_botocore():
            yield tracer
    finally:
        provider.shutdown()
