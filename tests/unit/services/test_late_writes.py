"""A task is sent before it is stored. A worker keeps a message whose task is not
stored for the orphan grace, then drops it; so a write that lands late in that time
sends the message again, and no stored task is left without one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import pytest

from adapters.clock import ManualClock
from domain.services import BatchEntry, SubmissionLimits, SubmitRequest
from tests.support.service_fakes import SlowRepository
from tests.support.service_rig import EMAIL, Rig

GRACE = 60.0
T = TypeVar("T")


def slow_rig() -> tuple[Rig, SlowRepository]:
    clock = ManualClock()
    repository = SlowRepository(clock)
    rig = Rig(repository=repository, limits=SubmissionLimits(orphan_grace_seconds=GRACE))
    # The rig makes its own clock: the slow store must sleep on the rig's.
    repository.clock = rig.clock
    return rig, repository


async def on_the_clock(rig: Rig, work: Awaitable[T], seconds: float) -> T:
    """Run ``work`` while moving the rig's clock on a second at a time (at most
    ``seconds`` and a little more), for the writes it waits on."""
    running = asyncio.ensure_future(work)
    for _ in range(int(seconds) + 5):
        if running.done():
            break
        await rig.clock.advance(1.0)
    return await running


@pytest.mark.parametrize(("write_seconds", "messages"), [(0.0, 1), (29.0, 1), (30.0, 2)])
async def test_a_write_later_than_half_the_grace_sends_the_message_again(
    write_seconds: float, messages: int
) -> None:
    rig, repository = slow_rig()
    repository.write_seconds = write_seconds

    task = await on_the_clock(rig, rig.service.submit(EMAIL), write_seconds)

    owned, spares = await rig.messages()
    assert owned == [task.id] * messages and spares == []


async def test_a_late_idempotent_write_sends_again_but_a_repeat_does_not() -> None:
    rig, repository = slow_rig()
    repository.write_seconds = 40.0

    first, created = await on_the_clock(rig, rig.service.submit_idempotent(EMAIL, "k"), 40.0)
    again, repeated = await rig.service.submit_idempotent(EMAIL, "k")

    assert created and not repeated and again.id == first.id
    owned, spares = await rig.messages()
    assert owned == [first.id, first.id] and len(spares) == 1  # the repeat's spare


async def test_a_late_batch_sends_every_stored_task_again_in_one_call() -> None:
    rig, repository = slow_rig()
    repository.write_seconds = 20.0  # 3 writes: 60 s in all, past half the grace
    entries = [BatchEntry(SubmitRequest(type="echo", payload=n)) for n in range(3)]

    outcomes = await on_the_clock(rig, rig.service.submit_batch(entries), 60.0)

    ids = [o.task.id for o in outcomes if o.task is not None]
    owned, _ = await rig.messages()
    assert len(ids) == 3 and sorted(owned) == sorted(ids * 2)


async def test_a_held_task_written_late_gets_no_message() -> None:
    rig, repository = slow_rig()
    repository.write_seconds = 40.0
    held = SubmitRequest(type="echo", payload=1, delay_seconds=3600)

    task = await on_the_clock(rig, rig.service.submit(held), 40.0)

    assert task.held and await rig.messages() == ([], [])
