"""One OpenTelemetry trace from the HTTP request (or an in-process submit) through the
queue to the handler and its own spans, on the memory backend, caught by the SDK's
in-memory span exporter."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk.trace", reason="the otel extra")

from dependency_injector import providers  # noqa: E402
from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)

from adapters.observability.tracing import OtelTracer  # noqa: E402
from bootstrap.container import build_container  # noqa: E402
from bootstrap.settings import Settings  # noqa: E402
from domain.models import Task  # noqa: E402
from domain.processing import Outcome  # noqa: E402
from domain.services import SubmitRequest  # noqa: E402
from domain.task_types import TaskType  # noqa: E402
from entrypoints.http.app import create_app  # noqa: E402
from tests.support.http_app import serve_app  # noqa: E402
from tests.support.trace_context import CALLER_SPAN, TRACE_ID, TRACEPARENT  # noqa: E402


class Traced:
    """A container on the memory backend whose tracer exports to memory, and a task
    type ``traced`` whose (sync) handler makes a span of its own, as an outbound call
    of an instrumented client would."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.container = build_container(Settings(backend="memory"))
        self.container.tracer.override(providers.Object(OtelTracer(self.provider)))
        handler_tracer = self.provider.get_tracer("handler")

        def traced(payload: Any) -> str:
            with handler_tracer.start_as_current_span("outbound call"):
                return "done"

        self.container.task_types().add(TaskType("traced", traced, 5.0))

    async def run_one(self) -> Task:
        """Receive the one message on the queue and process it as a worker does."""
        deliveries = await self.container.queue().receive(
            max_messages=1, visibility_timeout=30, wait_seconds=0
        )
        assert len(deliveries) == 1
        outcome = await self.container.processor().process(deliveries[0])
        assert outcome is Outcome.COMPLETED
        task: Task = await self.container.repository().get(deliveries[0].task_id or "")
        return task

    def span(self, name: str) -> ReadableSpan:
        found = [s for s in self.exporter.get_finished_spans() if s.name == name]
        assert len(found) == 1, [s.name for s in self.exporter.get_finished_spans()]
        return found[0]

    def ancestry(self, span: ReadableSpan) -> list[int]:
        """The span ids from ``span``'s parent up to the root of what was recorded,
        and the remote parent the root came with."""
        by_id = {s.context.span_id: s for s in self.exporter.get_finished_spans() if s.context}
        chain: list[int] = []
        parent = span.parent
        while parent is not None:
            chain.append(parent.span_id)
            above = by_id.get(parent.span_id)
            parent = above.parent if above is not None else None
        return chain


@pytest.fixture
def traced() -> Iterator[Traced]:
    rig = Traced()
    yield rig
    rig.provider.shutdown()


async def test_one_trace_goes_from_the_http_request_through_the_queue_to_the_handler(
    traced: Traced,
) -> None:
    async with serve_app(create_app(traced.container)) as client:
        response = await client.post(
            "/tasks", json={"type": "traced"}, headers={"traceparent": TRACEPARENT}
        )
    assert response.status_code == 201, response.text
    task = await traced.run_one()
    assert task.result == "done"

    request = traced.span("POST /tasks")
    run = traced.span("run traced")
    outbound = traced.span("outbound call")
    assert request.kind is trace.SpanKind.SERVER
    # the request continues the caller's trace, and the run and the handler's call join it
    assert request.parent is not None and request.parent.span_id == int(CALLER_SPAN, 16)
    for span in (request, run, outbound):
        assert span.context is not None
        assert format(span.context.trace_id, "032x") == TRACE_ID
    assert request.context is not None and run.context is not None
    chain = traced.ancestry(outbound)
    assert chain[0] == run.context.span_id  # the handler's own span is the run's child
    assert request.context.span_id in chain  # ... and the chain reaches the request
    assert chain[-1] == int(CALLER_SPAN, 16)  # ... and the caller's span above it
    # what was stored is the request's span, a child of the header's
    assert task.traceparent == f"00-{TRACE_ID}-{request.context.span_id:016x}-01"
    assert dict(run.attributes or {})["taskq.task.id"] == task.id


async def test_an_in_process_submit_under_a_span_is_the_parent_of_the_run(
    traced: Traced,
) -> None:
    app_tracer = traced.provider.get_tracer("application")
    with app_tracer.start_as_current_span("nightly report") as current:
        await traced.container.task_service().submit(SubmitRequest("traced"))
    await traced.run_one()

    run = traced.span("run traced")
    submitter = current.get_span_context()
    assert run.context is not None and run.parent is not None
    assert run.context.trace_id == submitter.trace_id
    assert run.parent.span_id == submitter.span_id
    assert traced.ancestry(traced.span("outbound call")) == [
        run.context.span_id,
        submitter.span_id,
    ]


async def test_a_task_without_trace_context_runs_in_a_trace_of_its_own(traced: Traced) -> None:
    task = await traced.container.task_service().submit(SubmitRequest("traced"))
    assert task.traceparent is None  # no span was current
    with traced.provider.get_tracer("worker").start_as_current_span("unrelated"):
        await traced.run_one()  # run while the worker has a span of its own
    run = traced.span("run traced")
    assert run.parent is None  # a root: not a child of whatever the worker was doing


async def test_a_handler_exception_is_recorded_on_the_run_span(traced: Traced) -> None:
    def broken(payload: Any) -> None:
        raise RuntimeError("smtp down")

    traced.container.task_types().add(TaskType("broken", broken, 5.0))
    await traced.container.task_service().submit(SubmitRequest("broken", max_attempts=1))
    deliveries = await traced.container.queue().receive(
        max_messages=1, visibility_timeout=30, wait_seconds=0
    )
    assert await traced.container.processor().process(deliveries[0]) is Outcome.FAILED
    run = traced.span("run broken")
    assert run.status.status_code is trace.StatusCode.ERROR
    assert [e.name for e in run.events] == ["exception"]
