"""The handler context (domain/run_context.py) as the processor gives it to a running
handler, on the memory adapters with a hand-moved clock: progress written at most once
an interval with the latest report winning, cancellation and a lost lease told to the
handler before it is stopped, the bound logger, and what a child process gets."""

from __future__ import annotations

import asyncio
import logging
import pickle
import threading
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

import taskq
from adapters.clock import ManualClock
from domain.limits import MAX_PROGRESS_MESSAGE_LENGTH, PROGRESS_INTERVAL_SECONDS
from domain.models import Task, TaskStatus
from domain.processing import Outcome
from domain.progress import Progress
from domain.run_context import DetachedContext, RunContext
from domain.task_types import TaskType
from tests.support.processing_rig import ProcessingRig
from tests.support.service_fakes import RecordingRepository

HEARTBEAT = 5.0


def rig_with(handler: Any, *, timeout: float = 60) -> tuple[ProcessingRig, RecordingRepository]:
    """A rig whose ``job`` type takes a context, on a store that records its writes."""
    rig = ProcessingRig(heartbeat=HEARTBEAT)
    repo = RecordingRepository()
    rig.repo = rig.service.repository = repo
    rig.processor = rig.new_processor()
    rig.task_types.add(TaskType("job", handler, timeout, takes_context=True))
    return rig, repo


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def started(rig: ProcessingRig) -> tuple[Task, asyncio.Task[Outcome]]:
    task = await rig.submit("job", "p")
    run = asyncio.create_task(rig.processor.process(await rig.receive()))
    await settle()
    return task, run


def stops_when_told(seen: list[bool]) -> Any:
    """An async handler that returns once told to stop, noting what ``cancelled`` said."""

    async def polite(payload: Any, context: taskq.TaskContext) -> str:
        await context.wait_cancelled()
        seen.append(context.cancelled)
        return "stopped"

    return polite


def polls_until_told(seen: threading.Event) -> Any:
    """A sync handler (run in a thread) that polls ``cancelled`` for up to 5 s."""

    def polling(payload: Any, context: taskq.TaskContext) -> str:
        for _ in range(500):
            if context.cancelled:
                seen.set()
                return "stopped"
            threading.Event().wait(0.01)
        return "never told"

    return polling


def a_context(report: Any = None) -> RunContext:
    clock = ManualClock()
    task = Task.create("job", None, clock.now()).claim("lease", clock.now(), 30)
    deadline = clock.now() + timedelta(seconds=60)
    return RunContext(task, deadline=deadline, clock=clock, report=report or (lambda p: None))


async def test_both_contexts_are_taskq_task_contexts() -> None:
    context = a_context()
    detached = pickle.loads(pickle.dumps(context))

    assert isinstance(context, taskq.TaskContext)
    assert isinstance(detached, taskq.TaskContext)
    assert type(detached) is DetachedContext
    assert (detached.task_id, detached.task_type, detached.attempt, detached.deadline) == (
        context.task_id,
        "job",
        1,
        context.deadline,
    )


async def test_progress_is_written_at_most_once_an_interval_and_the_latest_report_wins() -> None:
    more, last = asyncio.Event(), asyncio.Event()

    async def chatty(payload: Any, context: taskq.TaskContext) -> str:
        await context.progress(10, "a")
        await more.wait()
        await context.progress(20, "b")
        await context.progress(30, "c")
        await last.wait()
        await context.progress(90, "almost")
        return "done"

    rig, repo = rig_with(chatty)
    task, run = await started(rig)
    first = await rig.repo.get(task.id)
    more.set()
    await settle()
    await rig.clock.advance(PROGRESS_INTERVAL_SECONDS / 2)
    still = await rig.repo.get(task.id)
    await rig.clock.advance(PROGRESS_INTERVAL_SECONDS / 2)
    latest = await rig.repo.get(task.id)
    last.set()
    outcome = await run
    final = await rig.repo.get(task.id)

    assert first.progress == Progress(10.0, "a", rig.clock.now() - timedelta(seconds=1))
    assert still.progress == first.progress
    assert latest.progress is not None and latest.progress.percent == 30
    # "b" was never written: replaced by "c" while it waited for the next slot. The last
    # report, made within the interval, is written when the attempt ends.
    assert repo.progress_writes() == ["a", "c", "almost"]
    assert outcome is Outcome.COMPLETED
    assert final.status is TaskStatus.COMPLETED
    assert final.progress is not None and final.progress.percent == 90


async def test_a_progress_report_that_makes_no_sense_fails_the_call_not_the_store() -> None:
    reports: list[Progress] = []
    context = a_context(reports.append)

    for percent in (-1, 100.5, float("nan"), True, "50"):
        with pytest.raises(ValueError, match="progress percent must be a number from 0 to 100"):
            await context.progress(percent)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lone surrogate"):
        await context.progress(1, "\ud800")
    await context.progress(5, "x" * (MAX_PROGRESS_MESSAGE_LENGTH + 10))

    [long] = reports
    assert long.message is not None and len(long.message) == MAX_PROGRESS_MESSAGE_LENGTH
    assert long.message.endswith("... [truncated]")


async def test_progress_sync_from_a_thread_reaches_the_worker_loop() -> None:
    reports: list[Progress] = []
    context = a_context(reports.append)

    await asyncio.to_thread(context.progress_sync, 70, "from a thread")
    await settle()

    assert [(p.percent, p.message) for p in reports] == [(70.0, "from a thread")]


async def test_a_cancel_request_is_told_to_the_handler_which_stops_by_itself() -> None:
    seen: list[bool] = []
    polite = stops_when_told(seen)

    rig, _ = rig_with(polite)
    task, run = await started(rig)
    await rig.service.cancel(task.id)
    await rig.clock.advance(HEARTBEAT)
    outcome = await asyncio.wait_for(run, timeout=5)

    assert seen == [True]
    assert outcome is Outcome.CANCELLED
    assert (await rig.repo.get(task.id)).status is TaskStatus.CANCELLED


async def test_a_sync_handler_sees_the_cancel_in_its_thread() -> None:
    seen = threading.Event()
    rig, _ = rig_with(polls_until_told(seen))
    task, run = await started(rig)
    await rig.service.cancel(task.id)
    await rig.clock.advance(HEARTBEAT)
    outcome = await asyncio.wait_for(run, timeout=5)

    assert seen.is_set()
    assert outcome is Outcome.CANCELLED


async def test_a_handler_that_ignores_the_cancel_is_stopped_after_its_grace() -> None:
    told: list[taskq.TaskContext] = []

    async def stubborn(payload: Any, context: taskq.TaskContext) -> str:
        told.append(context)
        await asyncio.Event().wait()
        return "never"

    rig, _ = rig_with(stubborn)
    task, run = await started(rig)
    await rig.service.cancel(task.id)
    await rig.clock.advance(HEARTBEAT)
    await settle()
    waiting = not run.done()
    await rig.clock.advance(rig.settings.cancel_grace_seconds)
    outcome = await asyncio.wait_for(run, timeout=5)

    assert waiting and told[0].cancelled
    assert outcome is Outcome.CANCELLED


async def test_a_lost_lease_is_told_to_the_handler() -> None:
    seen: list[bool] = []
    polite = stops_when_told(seen)

    rig, repo = rig_with(polite)
    task, run = await started(rig)
    stored = await repo.get(task.id)
    rival = replace(stored, lease_token="another worker's", version=stored.version + 1)
    await repo.transition(rival, expected=stored)
    await rig.clock.advance(HEARTBEAT)
    outcome = await asyncio.wait_for(run, timeout=5)

    assert seen == [True]
    assert outcome is Outcome.LOST_LEASE
    assert (await repo.get(task.id)).lease_token == "another worker's"


async def test_a_sync_handler_past_its_timeout_is_told_to_stop() -> None:
    seen = threading.Event()
    rig, _ = rig_with(polls_until_told(seen), timeout=0.05)
    task, run = await started(rig)
    outcome = await asyncio.wait_for(run, timeout=5)

    assert outcome is Outcome.RETRY_SCHEDULED
    assert await asyncio.to_thread(seen.wait, 5)


async def test_the_logger_carries_the_tasks_fields_beside_the_callers_own(
    caplog: pytest.LogCaptureFixture,
) -> None:
    context = a_context()
    caplog.set_level(logging.INFO, logger="taskq.handler")

    context.logger.info("rows done", extra={"rows": 3, "task_id": "forged"})

    [record] = caplog.records
    fields = vars(record)
    assert [fields[name] for name in ("task_id", "type", "attempt", "rows")] == [
        context.task_id,
        "job",
        1,
        3,
    ]


async def test_in_a_child_process_progress_does_nothing_and_cancelled_stays_false() -> None:
    detached = pickle.loads(pickle.dumps(a_context()))

    await detached.progress(50, "nowhere to go")
    detached.progress_sync(60)

    assert detached.cancelled is False
    with pytest.raises(ValueError, match="progress percent"):
        await detached.progress(500)
