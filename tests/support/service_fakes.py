"""Hand-written fakes of the ports for the use-case tests: a queue that is down or drops
part of a batch, a queue that answers late, a store that runs out of room, a store
where another writer gets in first, and one that records its writes. Each is the
memory adapter with one behaviour changed, not a mock."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import timedelta

from adapters.clock import ManualClock
from adapters.memory import InMemoryTaskQueue, InMemoryTaskRepository
from domain.errors import InfrastructureError, QueueSendFailed
from domain.models import Task
from domain.priorities import Priority


class UnreachableQueue(InMemoryTaskQueue):
    """Sends fail as an adapter reports an outage while ``down``. When up, the last
    ``refuse_last`` items of each batch are not sent while the rest are (a partial
    failure, as SQS reports per entry: the port's ``QueueSendFailed`` names them)."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.down = True
        self.refuse_last = 0

    async def send(
        self, task_id: str, *, delay_seconds: int = 0, priority: Priority = Priority.DEFAULT
    ) -> None:
        if self.down:
            raise InfrastructureError("queue", "connection refused")
        await super().send(task_id, delay_seconds=delay_seconds, priority=priority)

    async def send_batch(
        self, items: Sequence[tuple[str, int]], *, priority: Priority = Priority.DEFAULT
    ) -> None:
        if self.down:
            raise InfrastructureError("queue", "connection refused")
        split = max(0, len(items) - self.refuse_last)
        await super().send_batch(items[:split], priority=priority)
        if split < len(items):
            raise QueueSendFailed([task_id for task_id, _ in items[split:]], "throttled")


class LateAnsweringQueue(InMemoryTaskQueue):
    """Each send is taken by the queue at once but answered ``answer_seconds`` later on
    the clock (a slow network, or a client that retried a send whose answer was lost):
    the message's delay runs from when the queue took it, before the sender hears."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.clock = clock
        self.answer_seconds = 0.0

    async def send(
        self, task_id: str, *, delay_seconds: int = 0, priority: Priority = Priority.DEFAULT
    ) -> None:
        await super().send(task_id, delay_seconds=delay_seconds, priority=priority)
        await self.clock.sleep(self.answer_seconds)


class FullRepository(InMemoryTaskRepository):
    """Has room for ``room`` more tasks, then every new task fails as a full disk does."""

    def __init__(self, room: int = 0) -> None:
        super().__init__()
        self.room = room

    async def add(self, task: Task) -> None:
        if self.room <= 0:
            raise InfrastructureError("repository", "disk full")
        await super().add(task)
        self.room -= 1


Rival = Callable[[Task], Task]
"""What another writer does to the stored task: its next version."""


def edited(task: Task) -> Task:
    """Another writer's edit that leaves the task in its status (a heartbeat, a flag):
    only its version and time move, so a compare-and-set against the old one loses."""
    return replace(
        task, updated_at=task.updated_at + timedelta(seconds=1), version=task.version + 1
    )


class RacingRepository(InMemoryTaskRepository):
    """Before each of the next ``times`` transitions, a rival writer changes the stored
    task first, so the caller's compare-and-set loses the race as it would for real."""

    def __init__(self) -> None:
        super().__init__()
        self.rival: Rival | None = None
        self.times = 0

    def race(self, rival: Rival, times: int = 1) -> None:
        self.rival, self.times = rival, times

    async def transition(self, new: Task, *, expected: Task) -> None:
        if self.rival is not None and self.times > 0:
            self.times -= 1
            current = await self.get(expected.id)
            await super().transition(self.rival(current), expected=current)
        await super().transition(new, expected=expected)


class SlowRepository(InMemoryTaskRepository):
    """Each new task's write takes ``write_seconds`` on the clock before it lands (a
    store under load): the message sent before it may wait that long for its row."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__()
        self.clock = clock
        self.write_seconds = 0.0

    async def add(self, task: Task) -> None:
        await self.clock.sleep(self.write_seconds)
        await super().add(task)


class RecordingRepository(InMemoryTaskRepository):
    """Keeps every transition that was stored, in order: a test counts the writes a use
    case made (of a kind: ``progress_writes``)."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[tuple[Task, Task]] = []
        """(expected, new) of each stored transition."""

    async def transition(self, new: Task, *, expected: Task) -> None:
        await super().transition(new, expected=expected)
        self.written.append((expected, new))

    def progress_writes(self) -> list[str | None]:
        """The message of each progress write, in order."""
        return [
            new.progress.message
            for old, new in self.written
            if new.progress is not None and new.progress != old.progress
        ]
