"""The use cases tell ``TaskEvents`` what happens to tasks: one event per state change,
with the worker, durations, error and traceback; the Prometheus recorder and the log
adapter turn them into figures and lines."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from adapters.observability.log_format import TextFormatter, json_formatter
from adapters.observability.metrics import OTHER_TYPE, PrometheusTaskEvents
from adapters.observability.task_log import TaskEventLog
from domain.errors import PermanentTaskError
from domain.events import FanOut, TaskEvent, TaskEventKind
from domain.limits import MAX_TRACEBACK_BYTES
from domain.models import Task, TaskStatus, truncate_traceback
from domain.processing import Outcome
from tests.support.processing_rig import ProcessingRig, process_in_time

Kind = TaskEventKind


class Recorded:
    """A ``TaskEvents`` that keeps what it is told."""

    def __init__(self) -> None:
        self.events: list[TaskEvent] = []

    def record(self, event: TaskEvent) -> None:
        self.events.append(event)

    def kinds(self, task_id: str | None = None) -> list[TaskEventKind]:
        return [e.kind for e in self.events if task_id is None or e.task.id == task_id]


def observed_rig() -> tuple[ProcessingRig, Recorded]:
    rig = ProcessingRig()
    events = Recorded()
    rig.service.events = events
    rig.processor = rig.new_processor()
    rig.processor.events = events
    rig.processor.worker_id = "worker-1"
    return rig, events


async def test_a_task_that_completes_is_submitted_started_completed() -> None:
    rig, events = observed_rig()

    async def ok(payload: Any) -> str:
        await rig.clock.advance(2)
        return "done"

    rig.handler("ok", ok)
    task = await rig.submit("ok")
    await rig.clock.advance(3)
    assert await rig.processor.process(await rig.receive()) is Outcome.COMPLETED

    assert events.kinds() == [Kind.SUBMITTED, Kind.STARTED, Kind.COMPLETED]
    started, completed = events.events[1:]
    assert started.worker_id == completed.worker_id == "worker-1"
    assert started.queue_wait_seconds == pytest.approx(3)
    assert completed.run_seconds == pytest.approx(2)
    assert completed.total_seconds == pytest.approx(5)
    assert completed.task.id == task.id and completed.traceback is None


async def test_a_failing_attempt_is_retried_with_its_delay_and_traceback() -> None:
    rig, events = observed_rig()

    def boom(payload: Any) -> None:
        raise RuntimeError("smtp down")

    rig.handler("boom", boom)
    task = await rig.submit("boom", max_attempts=2)
    await rig.processor.process(await rig.receive())
    await process_in_time(rig, await rig.receive_when_visible())

    assert events.kinds() == [
        Kind.SUBMITTED,
        Kind.STARTED,
        Kind.RETRIED,
        Kind.STARTED,
        Kind.FAILED,
        Kind.DEAD_LETTERED,
    ]
    retried, failed = events.events[2], events.events[4]
    assert retried.delay_seconds is not None and retried.delay_seconds > 0
    assert retried.error == "RuntimeError: smtp down"
    assert retried.traceback is not None and 'raise RuntimeError("smtp down")' in retried.traceback
    assert failed.traceback is not None and failed.total_seconds is not None
    assert events.events[3].queue_wait_seconds is None  # a retry's due time is not stored
    stored = await rig.repo.get(task.id)
    assert stored.traceback is not None and "RuntimeError: smtp down" in stored.traceback


async def test_a_permanent_error_fails_once_and_keeps_its_traceback() -> None:
    rig, events = observed_rig()

    def refuse(payload: Any) -> None:
        raise PermanentTaskError("bad address")

    rig.handler("refuse", refuse)
    task = await rig.submit("refuse")
    await rig.processor.process(await rig.receive())

    assert events.kinds(task.id)[-2:] == [Kind.FAILED, Kind.DEAD_LETTERED]
    assert "PermanentTaskError: bad address" in str((await rig.repo.get(task.id)).traceback)


async def test_a_timeout_is_told_once_with_where_an_async_handler_was() -> None:
    rig, events = observed_rig()

    async def waits_forever(payload: Any) -> None:
        await asyncio.Event().wait()

    rig.handler("slow", waits_forever, timeout=0.05)
    task = await rig.submit("slow", max_attempts=1)
    await rig.processor.process(await rig.receive())

    assert events.kinds(task.id) == [
        Kind.SUBMITTED,
        Kind.STARTED,
        Kind.TIMED_OUT,
        Kind.FAILED,
        Kind.DEAD_LETTERED,
    ]
    timed_out = events.events[2]
    assert timed_out.traceback is not None and "in waits_forever" in timed_out.traceback
    assert events.events[3].traceback is None  # the stack is told once, with the timeout
    stored = await rig.repo.get(task.id)
    assert stored.error == "HandlerTimeout: slow timed out after 0.05s"
    assert stored.traceback is not None and "in waits_forever" in stored.traceback


async def test_a_sync_handler_past_its_timeout_is_caught_in_its_own_frame() -> None:
    rig, events = observed_rig()
    release = asyncio.get_running_loop().create_future()

    def spins(payload: Any) -> None:
        import time

        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and not release.done():
            time.sleep(0.005)

    rig.handler("spins", spins, timeout=0.05)
    task = await rig.submit("spins", max_attempts=1)
    await rig.processor.process(await rig.receive())
    release.set_result(None)

    (timed_out,) = [e for e in events.events if e.kind is Kind.TIMED_OUT]
    assert timed_out.task.id == task.id
    assert timed_out.traceback is not None and "in spins" in timed_out.traceback


async def test_cancelling_a_pending_task_is_an_event() -> None:
    rig, events = observed_rig()
    rig.handler("ok", lambda payload: None)
    task = await rig.submit("ok")
    await rig.service.cancel(task.id)
    assert events.kinds() == [Kind.SUBMITTED, Kind.CANCELLED]
    assert events.events[1].total_seconds == 0


def test_a_long_traceback_keeps_its_end_within_the_bound() -> None:
    text = "frame\n" * 5000 + "ValueError: the end"
    kept = truncate_traceback(text)
    assert len(kept.encode()) <= MAX_TRACEBACK_BYTES
    assert kept.endswith("ValueError: the end") and kept.startswith("[truncated]")
    assert truncate_traceback("short") == "short"


# -- the adapters --------------------------------------------------------------------


def _event(kind: TaskEventKind, task_type: str = "email", **details: Any) -> TaskEvent:
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 1, 1, tzinfo=UTC)
    task = Task.create(task_type, {"secret": "payload"}, now)
    task = task.claim("lease", now + timedelta(seconds=1), 30)
    if kind is Kind.COMPLETED:
        task = task.complete({"secret": "result"}, now + timedelta(seconds=3))
    return TaskEvent(kind, task, now + timedelta(seconds=3), "w-1", **details)


def test_the_recorder_counts_by_registered_type_and_buckets_durations() -> None:
    collectors = CollectorRegistry()
    recorder = PrometheusTaskEvents(collectors, ["email"])
    recorder.record(_event(Kind.COMPLETED))
    recorder.record(_event(Kind.COMPLETED, task_type="free-text-from-somewhere"))

    def value(name: str, task_type: str) -> float | None:
        return collectors.get_sample_value(name, {"type": task_type})

    assert value("taskq_tasks_completed_total", "email") == 1
    assert value("taskq_tasks_completed_total", OTHER_TYPE) == 1
    assert value("taskq_tasks_failed_total", "email") == 0  # every series exists at start
    assert value("taskq_task_run_seconds_count", "email") == 1
    assert value("taskq_task_run_seconds_sum", "email") == pytest.approx(2)
    assert value("taskq_task_end_to_end_seconds_sum", "email") == pytest.approx(3)
    assert (
        collectors.get_sample_value(
            "taskq_task_run_seconds_bucket", {"type": "email", "le": "0.001"}
        )
        == 0
    )
    assert (
        collectors.get_sample_value(
            "taskq_task_run_seconds_bucket", {"type": "email", "le": "3600.0"}
        )
        == 1
    )


def test_one_observer_that_raises_does_not_stop_the_others() -> None:
    class Broken:
        def record(self, event: TaskEvent) -> None:
            raise RuntimeError("observer bug")

    kept = Recorded()
    FanOut([Broken(), kept]).record(_event(Kind.STARTED))
    assert kept.kinds() == [Kind.STARTED]


def _logged(log: TaskEventLog, event: TaskEvent, caplog: pytest.LogCaptureFixture) -> list[Any]:
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="taskq.tasks"):
        log.record(event)
    return list(caplog.records)


def test_routine_events_are_debug_unless_asked_and_failures_always_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    quiet, loud = TaskEventLog(), TaskEventLog(task_events_at_info=True)
    assert [r.levelno for r in _logged(quiet, _event(Kind.COMPLETED), caplog)] == [logging.DEBUG]
    assert [r.levelno for r in _logged(loud, _event(Kind.COMPLETED), caplog)] == [logging.INFO]
    levels = {
        kind: _logged(quiet, _event(kind), caplog)[0].levelno
        for kind in (Kind.RETRIED, Kind.FAILED, Kind.TIMED_OUT, Kind.LEASE_LOST, Kind.RECOVERED)
    }
    assert levels[Kind.FAILED] == levels[Kind.TIMED_OUT] == logging.ERROR
    assert levels[Kind.RETRIED] == levels[Kind.LEASE_LOST] == levels[Kind.RECOVERED]
    assert levels[Kind.RETRIED] == logging.WARNING


def test_a_failure_is_one_json_line_with_its_traceback_and_no_payload(
    caplog: pytest.LogCaptureFixture,
) -> None:
    event = _event(Kind.FAILED, error="ValueError: no", traceback="Traceback...\nValueError: no")
    (record,) = _logged(TaskEventLog(), event, caplog)
    line = json_formatter().format(record)
    assert "\n" not in line
    fields = json.loads(line)
    assert fields["level"] == "ERROR" and fields["event"] == "failed"
    assert fields["task_id"] == event.task.id and fields["type"] == "email"
    assert fields["attempt"] == 1 and fields["worker_id"] == "w-1"
    assert fields["traceback"].endswith("ValueError: no")
    assert "secret" not in line  # neither payload nor result

    text = TextFormatter().format(record)
    assert "task failed" in text and f"task_id='{event.task.id}'" in text
    assert text.endswith("Traceback...\nValueError: no")


def test_the_failed_status_is_what_the_event_carries() -> None:
    event = _event(Kind.STARTED)
    assert event.task.status is TaskStatus.PROCESSING and event.total_seconds is None


def test_uvicorns_coloured_copy_of_a_message_is_not_a_field() -> None:
    record = logging.makeLogRecord(
        {
            "name": "uvicorn.error",
            "levelno": logging.INFO,
            "levelname": "INFO",
            "msg": "Started server process [%d]",
            "args": (42,),
            "color_message": "Started server process [\x1b[36m%d\x1b[0m]",
        }
    )
    fields = json.loads(json_formatter().format(record))
    assert fields["message"] == "Started server process [42]"
    assert "color_message" not in fields
    assert "color_message" not in TextFormatter().format(record)
