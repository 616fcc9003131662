"""A delivery costs few asyncio tasks: the handler runs in the delivery's own task, the
heartbeat is lazy and a handler's timeout is a scope, not a task of its own (issue 18)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from typing import Any

from domain.processing import Outcome
from tests.support.processing_rig import ProcessingRig as Env
from tests.unit.test_worker import Rig


class TaskCount:
    """Counts the tasks the running loop creates while it is installed."""

    def __init__(self) -> None:
        self.created = 0

    def __enter__(self) -> TaskCount:
        loop = asyncio.get_running_loop()

        def factory(
            loop: asyncio.AbstractEventLoop,
            coro: Generator[Any, None, Any] | Coroutine[Any, Any, Any],
            **kwargs: Any,
        ) -> asyncio.Task[Any]:
            self.created += 1
            return asyncio.Task(coro, loop=loop, **kwargs)

        loop.set_task_factory(factory)
        return self

    def __exit__(self, *_: object) -> None:
        asyncio.get_running_loop().set_task_factory(None)


async def test_an_attempt_shorter_than_the_first_beat_runs_in_its_delivery_task() -> None:
    env = Env()

    async def quick(payload: Any) -> str:
        await asyncio.sleep(0)
        return "done"

    env.handler("quick", quick)
    await env.submit("quick")
    delivery = await env.receive()
    with TaskCount() as tasks:
        assert await env.processor.process(delivery) is Outcome.COMPLETED
    # No task for the handler, none for the heartbeat, none for the handler's timeout.
    assert tasks.created == 0


async def test_a_handlers_own_timeout_error_is_an_error_not_its_timeout() -> None:
    env = Env()

    async def raises(payload: Any) -> None:
        raise TimeoutError("upstream")

    env.handler("raises", raises, timeout=60)
    task = await env.submit("raises", max_attempts=1)
    assert await env.processor.process(await env.receive()) is Outcome.FAILED
    assert (await env.repo.get(task.id)).error == "TimeoutError: upstream"


async def test_a_worker_with_a_backlog_spends_two_tasks_a_delivery() -> None:
    rig = Rig(concurrency=4)

    async def noop(payload: Any) -> None:
        await asyncio.sleep(0)

    with TaskCount() as tasks:
        ids, running = await rig.start(noop, 40)
        await rig.wait_until_final(ids)
        rig.stop.set()
        await running
    # Each delivery: its processing and its handler. Receives from the backlog, and a
    # slot freed while all are busy, create none (a few more: the worker's own).
    assert tasks.created <= 2 * 40 + 10, tasks.created


async def test_a_handler_that_swallows_its_timeout_still_timed_out() -> None:
    env = Env()

    async def stubborn(payload: Any) -> str:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            pass
        return "late"

    env.handler("stubborn", stubborn, timeout=0.05)
    task = await env.submit("stubborn", max_attempts=1)
    assert await env.processor.process(await env.receive()) is Outcome.FAILED
    failed = await env.repo.get(task.id)
    assert failed.result is None
    assert failed.error == "HandlerTimeout: stubborn timed out after 0.05s"
