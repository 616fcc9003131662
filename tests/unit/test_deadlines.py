"""Timers set through lanes of one delay (domain/deadlines.py) fire as the loop's own
would: each when due, in order, and never once cancelled, however many are."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from domain import deadlines


async def test_timers_fire_when_due_in_order_and_cancelled_ones_never() -> None:
    loop = asyncio.get_running_loop()
    fired: list[tuple[int, float]] = []
    started = loop.time()

    def firing(n: int) -> Callable[[], None]:
        return lambda: fired.append((n, loop.time()))

    # enough cancellations for a lane to be rebuilt
    timers = [deadlines.call_later(0.05, firing(n)) for n in range(300)]
    for n, timer in enumerate(timers):
        if n % 3:
            timer.cancel()
    other = deadlines.call_later(0.02, lambda: fired.append((-1, loop.time())))
    await asyncio.sleep(0.12)
    other.cancel()  # already fired: nothing happens
    assert [n for n, _ in fired] == [-1, *range(0, 300, 3)]
    assert all(at - started >= 0.05 for n, at in fired if n >= 0)


async def test_a_timer_set_by_a_firing_one_and_a_failing_callback_do_not_stop_the_lane() -> None:
    loop = asyncio.get_running_loop()
    errors: list[object] = []
    loop.set_exception_handler(lambda _, context: errors.append(context["exception"]))
    fired: list[str] = []

    def fail() -> None:
        raise RuntimeError("callback bug")

    deadlines.call_later(0.01, fail)

    def set_another() -> None:
        deadlines.call_later(0.01, lambda: fired.append("b"))

    deadlines.call_later(0.01, set_another)
    deadlines.call_later(0.01, lambda: fired.append("a"))
    await asyncio.sleep(0.05)
    assert fired == ["a", "b"]
    assert [str(e) for e in errors] == ["callback bug"]


def test_each_loop_has_its_own_lanes_one_after_another_and_side_by_side() -> None:
    """The lanes of the loop last seen are remembered: a timer set on another loop
    (a new one, or one used before) still fires on its own loop."""
    fired: list[str] = []

    async def arm(name: str) -> None:
        deadlines.call_later(0.01, lambda: fired.append(name))
        await asyncio.sleep(0.05)

    asyncio.run(arm("first"))
    asyncio.run(arm("second"))  # the first loop is closed: new lanes
    one, two = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        one.run_until_complete(arm("one"))
        two.run_until_complete(arm("two"))
        one.run_until_complete(arm("one again"))  # back to a loop seen before
    finally:
        one.close()
        two.close()
    assert fired == ["first", "second", "one", "two", "one again"]
