"""The Coalescer: calls that arrive together share a batch, calls that arrive while a
batch is in flight go in the next one, and each caller gets its own outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from adapters.coalescing import Coalescer


class Doubler:
    """Doubles numbers a batch at a time; a negative number fails alone, 13 fails the
    whole batch. Each batch waits until ``release`` is set."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, items: list[int]) -> Sequence[int | BaseException]:
        self.batches.append(items)
        await self.release.wait()
        if 13 in items:
            raise RuntimeError("unlucky batch")
        return [ValueError(n) if n < 0 else 2 * n for n in items]


async def test_each_caller_gets_its_own_outcome() -> None:
    flush = Doubler()
    coalescer: Coalescer[int, int] = Coalescer(flush, max_batch=10, max_calls=1)
    outcomes = await asyncio.gather(
        *(coalescer.submit(n) for n in (1, -2, 3)), return_exceptions=True
    )
    assert outcomes[0] == 2 and outcomes[2] == 6
    assert isinstance(outcomes[1], ValueError)
    assert flush.batches == [[1, -2, 3]]


async def test_a_failed_batch_fails_its_callers_only() -> None:
    flush = Doubler()
    coalescer: Coalescer[int, int] = Coalescer(flush, max_batch=2, max_calls=1)
    outcomes = await asyncio.gather(
        *(coalescer.submit(n) for n in (13, 1, 2, 3)), return_exceptions=True
    )
    assert [type(o) for o in outcomes[:2]] == [RuntimeError, RuntimeError]
    assert outcomes[2:] == [4, 6]
    assert flush.batches == [[13, 1], [2, 3]]


async def test_calls_during_a_batch_in_flight_go_in_the_next() -> None:
    flush = Doubler()
    flush.release.clear()
    coalescer: Coalescer[int, int] = Coalescer(flush, max_batch=10, max_calls=1)
    first = asyncio.ensure_future(coalescer.submit(1))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert flush.batches == [[1]]  # alone: out at once, not held for company
    later = [asyncio.ensure_future(coalescer.submit(n)) for n in (2, 3, 4)]
    await asyncio.sleep(0)
    flush.release.set()
    assert await first == 2 and await asyncio.gather(*later) == [4, 6, 8]
    assert flush.batches == [[1], [2, 3, 4]]


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError):
        Coalescer(Doubler(), max_batch=0, max_calls=1)
