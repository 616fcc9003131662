"""``SqsPriorityTaskQueue``: the TaskQueue port on one SQS queue per priority.

Only used when ``TASKQ_PRIORITIES=true``: the queues ``<queue>-high``, ``<queue>`` and
``<queue>-low`` (made by ``taskq init``) share one dead-letter queue. Without the
setting the engine polls the single ``SqsTaskQueue``, so a task costs no more requests
than before priorities existed.

A receive round looks at the queues in the weighted order of ``PriorityOrder``: a
short poll (no wait) of each in turn until the batch is full. Only when all three are
empty does it long-poll, all three at once (a message sent to any of them ends the
wait); the rare messages that come back beyond the batch (two queues answering in the
same instant) are handed back at once, which counts one receive against their
``maxReceiveCount``. So an idle worker makes three long polls where it made one, and
a busy one up to three receives per round.

A delivery's receipt is prefixed with its priority, so an ack, release or extend goes
to the queue that delivered it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import replace

from adapters.sqs.queue import SqsTaskQueue
from domain.models import DeadLetter, Delivery, QueueDepth
from domain.priorities import PRIORITIES_BY_RANK, Priority, PriorityOrder, PriorityWeights

_SEPARATOR = "|"
_NAMES = frozenset(p.value for p in Priority)


class SqsPriorityTaskQueue:
    def __init__(
        self,
        queues: Mapping[Priority, SqsTaskQueue],
        *,
        weights: PriorityWeights | None = None,
    ) -> None:
        missing = [p.value for p in Priority if p not in queues]
        if missing:
            raise ValueError(f"no queue for the priorities {', '.join(missing)}")
        for priority, queue in queues.items():
            if queue.priority is not priority:
                raise ValueError(f"the {priority.value} queue carries {queue.priority.value}")
        self._queues = dict(queues)
        self._default = self._queues[Priority.DEFAULT]
        self._default.redrive_urls = {p: q.queue_url for p, q in self._queues.items()}
        self._order = PriorityOrder(weights or PriorityWeights())
        self.max_batch = self._default.max_batch

    # -- sending ---------------------------------------------------------------------

    async def send(
        self, task_id: str, *, delay_seconds: int = 0, priority: Priority = Priority.DEFAULT
    ) -> None:
        await self._queues[priority].send(task_id, delay_seconds=delay_seconds, priority=priority)

    async def send_batch(
        self, items: Sequence[tuple[str, int]], *, priority: Priority = Priority.DEFAULT
    ) -> None:
        await self._queues[priority].send_batch(items, priority=priority)

    async def send_raw(self, body: str, *, delay_seconds: int = 0) -> None:
        """Put any body on the default queue (tests use it to inject poison messages)."""
        await self._default.send_raw(body, delay_seconds=delay_seconds)

    # -- receiving -------------------------------------------------------------------

    async def receive(
        self, *, max_messages: int, visibility_timeout: float, wait_seconds: float
    ) -> list[Delivery]:
        if not 1 <= max_messages <= self.max_batch:
            raise ValueError(f"max_messages must be between 1 and {self.max_batch}")
        out: list[Delivery] = []
        for priority in self._order.next_round():
            out += await self._receive(
                priority, max_messages - len(out), visibility_timeout, wait_seconds=0
            )
            if len(out) >= max_messages:
                return out
        if out or wait_seconds <= 0:
            return out
        received = await self._first_answer(max_messages, visibility_timeout, wait_seconds)
        kept, extra = received[:max_messages], received[max_messages:]
        for delivery in extra:  # the lowest priorities' last: back at once
            await self.release(delivery, delay_seconds=0)
        return kept

    async def _first_answer(
        self, max_messages: int, visibility_timeout: float, wait_seconds: float
    ) -> list[Delivery]:
        """Long-poll the three queues at once; the deliveries of the first that answers
        with any (and of any that answered with it), in rank order. The other polls are
        cancelled: a poll that still gets messages hands them back at once."""
        polls = {
            asyncio.ensure_future(
                self._receive(p, max_messages, visibility_timeout, wait_seconds=wait_seconds)
            ): p
            for p in PRIORITIES_BY_RANK
        }
        pending = set(polls)
        received: list[Delivery] = []
        try:
            while pending and not received:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for poll in sorted(done, key=lambda poll: polls[poll].rank):
                    received += poll.result()
        finally:
            for poll in pending:
                poll.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        return received

    async def _receive(
        self, priority: Priority, count: int, visibility_timeout: float, *, wait_seconds: float
    ) -> list[Delivery]:
        deliveries = await self._queues[priority].receive(
            max_messages=count, visibility_timeout=visibility_timeout, wait_seconds=wait_seconds
        )
        return [replace(d, receipt=f"{priority.value}{_SEPARATOR}{d.receipt}") for d in deliveries]

    def _route(self, delivery: Delivery) -> tuple[SqsTaskQueue, Delivery]:
        """The queue that delivered ``delivery``, and the delivery as that queue gave it.
        A receipt without a priority prefix is the default queue's."""
        name, sep, receipt = delivery.receipt.partition(_SEPARATOR)
        if sep and name in _NAMES:
            return self._queues[Priority(name)], replace(delivery, receipt=receipt)
        return self._default, delivery

    # -- settling --------------------------------------------------------------------

    async def ack(self, delivery: Delivery) -> None:
        queue, own = self._route(delivery)
        await queue.ack(own)

    async def ack_batch(self, deliveries: Sequence[Delivery]) -> None:
        groups: dict[Priority, list[Delivery]] = {}
        for delivery in deliveries:
            queue, own = self._route(delivery)
            groups.setdefault(queue.priority, []).append(own)
        for priority, group in groups.items():
            await self._queues[priority].ack_batch(group)

    async def release(self, delivery: Delivery, *, delay_seconds: float = 0) -> None:
        queue, own = self._route(delivery)
        await queue.release(own, delay_seconds=delay_seconds)

    async def extend(self, delivery: Delivery, *, visibility_timeout: float) -> None:
        queue, own = self._route(delivery)
        await queue.extend(own, visibility_timeout=visibility_timeout)

    async def dead_letter(self, delivery: Delivery, *, reason: str) -> None:
        queue, own = self._route(delivery)
        await queue.dead_letter(own, reason=reason)

    # -- inspection (one dead-letter queue for all three) ----------------------------

    async def depth(self) -> QueueDepth:
        depths = await asyncio.gather(*(q.depth() for q in self._queues.values()))
        return QueueDepth(
            visible=sum(d.visible for d in depths),
            in_flight=sum(d.in_flight for d in depths),
            delayed=sum(d.delayed for d in depths),
        )

    async def dead_letter_count(self) -> int:
        return await self._default.dead_letter_count()

    async def list_dead_letters(self, *, limit: int) -> list[DeadLetter]:
        return await self._default.list_dead_letters(limit=limit)

    async def redrive_dead_letters(self, *, limit: int | None = None) -> int:
        return await self._default.redrive_dead_letters(limit=limit)

    async def drop_dead_letter(self, message_id: str) -> DeadLetter:
        return await self._default.drop_dead_letter(message_id)

    async def redrive_dead_letter(self, message_id: str) -> DeadLetter:
        return await self._default.redrive_dead_letter(message_id)

    async def ping(self) -> None:
        await asyncio.gather(*(q.ping() for q in self._queues.values()))
