"""Flow control in the processing use case (domain/flow_gate.py, domain/flow_settings.py)
on the memory adapters with a hand-moved clock: a delivery over its type's limit, or of
a paused type, is deferred without an attempt and without a receive toward the DLQ."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime
from typing import Any

from adapters import envelope
from adapters.memory import InMemoryTaskRepository
from adapters.memory_flow import InMemoryFlowControlStore
from domain.flow_control import FlowLimits
from domain.flow_gate import FlowGate
from domain.flow_settings import TaskTypeLimits
from domain.limits import MAX_DEFER_SECONDS
from domain.models import Task, TaskStatus
from domain.priorities import Priority
from domain.processing import Outcome, ProcessorSettings
from domain.task_types import TaskType
from tests.support.processing_rig import LEASE, ProcessingRig


class FlowRig(ProcessingRig):
    def __init__(self) -> None:
        self.store = InMemoryFlowControlStore()
        super().__init__()

    def gate(self) -> FlowGate:
        return FlowGate(
            self.store,
            self.queue,
            self.clock,
            self.task_types,
            permit_seconds=LEASE,
            extend_every=LEASE / 3,
            jitter=lambda: 0.0,
        )

    def new_processor(self) -> Any:
        processor = super().new_processor()
        self.flow = self.gate()
        processor.flow = self.flow
        return processor

    def limited(self, name: str, handler: Any, limits: FlowLimits) -> None:
        self.task_types.add(replace(TaskType(name, handler, 60), flow=limits))


async def test_a_delivery_over_the_concurrency_limit_is_deferred_without_an_attempt() -> None:
    rig = FlowRig()
    release = asyncio.Event()

    async def slow(payload: Any) -> str:
        await release.wait()
        return "done"

    rig.limited("one-at-a-time", slow, FlowLimits(max_concurrency=1))
    first = await rig.submit("one-at-a-time")
    second = await rig.submit("one-at-a-time")
    running = asyncio.ensure_future(rig.processor.process(await rig.receive()))
    await asyncio.sleep(0.01)
    assert (await rig.store.get("one-at-a-time")).running(rig.clock.now().timestamp()) == 1  # type: ignore[union-attr]

    assert await rig.processor.process(await rig.receive()) is Outcome.THROTTLED
    held = await rig.repo.get(second.id)
    assert held.status is TaskStatus.PENDING and held.attempts == 0
    depth = await rig.queue.depth()
    assert (depth.in_flight, depth.delayed) == (1, 1)  # its message acked, a new one delayed

    release.set()
    assert await running is Outcome.COMPLETED
    assert (await rig.repo.get(first.id)).status is TaskStatus.COMPLETED
    assert (await rig.store.get("one-at-a-time")).permits == {}  # type: ignore[union-attr]

    await rig.clock.advance(MAX_DEFER_SECONDS)
    again = await rig.receive()
    assert again.task_id == second.id and again.receive_count == 1  # nothing toward the DLQ
    assert await rig.processor.process(again) is Outcome.COMPLETED
    assert (await rig.repo.get(second.id)).attempts == 1
    assert rig.flow.deferred[("one-at-a-time", "concurrency")] == 1


async def test_a_pause_takes_effect_at_once_here_and_a_resume_lets_the_task_run() -> None:
    rig = FlowRig()
    rig.handler("report", lambda payload: "ok")
    operator = TaskTypeLimits(rig.store, rig.flow, rig.clock)
    await operator.change("report", {"paused": True})
    task = await rig.submit("report")
    for _ in range(3):  # a long pause: deferred again and again, never failed
        assert await rig.processor.process(await rig.receive_when_visible()) is Outcome.THROTTLED
    assert (await rig.repo.get(task.id)).attempts == 0
    flows = await operator.all()
    assert flows["report"].limits.paused

    await operator.change("report", {"paused": False})
    assert await rig.processor.process(await rig.receive_when_visible()) is Outcome.COMPLETED


async def test_a_pause_made_by_another_process_is_seen_after_one_refresh() -> None:
    rig = FlowRig()
    rig.handler("report", lambda payload: "ok")
    await rig.flow.refresh()  # this worker has read the settings: none
    elsewhere = TaskTypeLimits(rig.store, rig.gate(), rig.clock)
    await elsewhere.change("report", {"paused": True})
    await rig.clock.advance(rig.flow.refresh_seconds)
    await rig.submit("report")
    assert await rig.processor.process(await rig.receive()) is Outcome.THROTTLED


async def test_the_rate_limit_defers_the_start_beyond_its_burst() -> None:
    rig = FlowRig()
    rig.limited("api-call", lambda payload: "ok", FlowLimits(rate=1, burst=1))
    await rig.submit("api-call")
    await rig.submit("api-call")
    assert await rig.processor.process(await rig.receive()) is Outcome.COMPLETED
    assert await rig.processor.process(await rig.receive()) is Outcome.THROTTLED
    assert await rig.processor.process(await rig.receive_when_visible()) is Outcome.COMPLETED


async def test_a_type_without_limits_reads_the_store_once_per_refresh_not_per_task() -> None:
    rig = FlowRig()
    rig.handler("free", lambda payload: "ok")
    reads = 0
    all_records = rig.store.all

    async def counted() -> Any:
        nonlocal reads
        reads += 1
        return await all_records()

    rig.store.all = counted  # type: ignore[method-assign]
    for _ in range(5):
        await rig.submit("free")
        assert await rig.processor.process(await rig.receive()) is Outcome.COMPLETED
    assert reads == 1


async def test_a_deferred_delivery_is_sent_again_on_its_own_priority() -> None:
    rig = FlowRig()
    rig.handler("report", lambda payload: "ok")
    await TaskTypeLimits(rig.store, rig.flow, rig.clock).change("report", {"paused": True})
    task = await rig.submit("report", priority="high")

    assert await rig.processor.process(await rig.receive()) is Outcome.THROTTLED
    again = await rig.receive_when_visible()

    assert again.task_id == task.id
    assert envelope.priority_of(again.raw_body) is Priority.HIGH


class OneWriteRepository(InMemoryTaskRepository):
    """The memory store with a one-write claim, as DynamoDB has (``ClaimsInOneWrite``):
    it claims before the task's type is known."""

    def __init__(self) -> None:
        super().__init__()
        self.one_write_claims = 0

    async def claim_pending(
        self, task_id: str, *, lease_token: str, now: datetime, lease_seconds: float
    ) -> Task | None:
        task = await self.get(task_id)
        if task.status is not TaskStatus.PENDING or task.run_at is not None:
            return None
        self.one_write_claims += 1
        claimed = task.claim(lease_token, now, lease_seconds)
        await self.transition(claimed, expected=task)
        return claimed


async def test_a_store_that_claims_in_one_write_does_so_only_while_no_type_is_limited() -> None:
    rig = FlowRig()
    repo = OneWriteRepository()
    rig.repo = rig.service.repository = repo
    rig.processor = rig.new_processor()
    rig.handler("report", lambda payload: "ok")
    operator = TaskTypeLimits(rig.store, rig.flow, rig.clock)

    first = await rig.submit("report")
    assert await rig.processor.process(await rig.receive()) is Outcome.COMPLETED
    assert repo.one_write_claims == 1 and (await repo.get(first.id)).attempts == 1

    await operator.change("report", {"paused": True})
    paused = await rig.submit("report")
    assert await rig.processor.process(await rig.receive()) is Outcome.THROTTLED
    assert repo.one_write_claims == 1, "a limited type's task is read before any claim"
    assert (await repo.get(paused.id)).attempts == 0


async def test_claim_at_finish_still_serves_the_types_without_a_limit() -> None:
    # A limit on one type takes only that type's tasks off claim at finish: a task of a
    # free type runs on its PENDING row (no claim written), a limited one is claimed.
    rig = FlowRig()
    rig.settings = ProcessorSettings(visibility_timeout=LEASE, claim_delay_seconds=1.0)
    rig.processor = rig.new_processor()
    seen: dict[str, TaskStatus] = {}

    def looking(name: str) -> Any:
        async def look(payload: Any) -> None:
            seen[name] = (await rig.repo.get(ids[name])).status

        return look

    rig.handler("free", looking("free"))
    rig.limited("limited", looking("limited"), FlowLimits(max_concurrency=2))
    ids = {name: (await rig.submit(name)).id for name in ("free", "limited")}
    for _ in ids:
        assert await rig.processor.process(await rig.receive()) is Outcome.COMPLETED
    assert seen == {"free": TaskStatus.PENDING, "limited": TaskStatus.PROCESSING}
    finals = [(await rig.repo.get(i)).status for i in ids.values()]
    assert finals == [TaskStatus.COMPLETED] * 2
