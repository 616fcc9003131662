"""Submit validation and the registry, on the in-memory adapters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from adapters.clock import ManualClock
from adapters.handlers.builtin import register_builtins
from adapters.memory import InMemoryTaskQueue, InMemoryTaskRepository, InMemoryWorkerRegistry
from domain.errors import InfrastructureError, QueueSendFailed, UnknownTaskType, ValidationError
from domain.models import Task, TaskStatus
from domain.registry import HandlerRegistry
from domain.services import MAX_BATCH_SIZE, BatchEntry, SubmitRequest, TaskService


def service() -> TaskService:
    clock = ManualClock()
    return TaskService(
        InMemoryTaskRepository(),
        InMemoryTaskQueue(clock),
        clock,
        register_builtins(HandlerRegistry()),
        InMemoryWorkerRegistry(),
    )


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (SubmitRequest(type=""), "type"),
        (SubmitRequest(type="   "), "type"),
        (SubmitRequest(type="email", payload="not-an-address"), "payload"),
        (SubmitRequest(type="email", payload=42), "payload"),
        (
            SubmitRequest(type="image-resize", payload={"image": "a.png", "width": 0, "height": 5}),
            "payload",
        ),
        (SubmitRequest(type="data-export", payload={"dataset": "x", "format": "xml"}), "payload"),
        (SubmitRequest(type="email", payload="a@b.co", max_attempts=0), "max_attempts"),
        (SubmitRequest(type="email", payload="a@b.co", max_attempts=1000), "max_attempts"),
        (SubmitRequest(type="email", payload="a@b.co", timeout_seconds=0), "timeout_seconds"),
        (SubmitRequest(type="email", payload="a@b.co", delay_seconds=-1), "delay_seconds"),
        (SubmitRequest(type="email", payload="a@b.co", delay_seconds=400 * 86400), "delay_seconds"),
        (
            SubmitRequest(type="email", payload="a@b.co", delay_seconds=float("nan")),
            "delay_seconds",
        ),
        # a lone surrogate cannot be stored (UTF-8): refused, naming its path
        (SubmitRequest(type="email", payload={"to": "a@b.co", "note": "\ud800"}), "payload.note"),
        (SubmitRequest(type="email", payload={"to": "a@b.co", "\udfff": 1}), 'payload["\\udfff"]'),
        (SubmitRequest(type="data-export", payload=["x", ["\ud800"]]), "payload[1][0]"),
        (SubmitRequest(type="email\ud800", payload="a@b.co"), "type"),
    ],
)
async def test_invalid_submissions_name_the_field_and_store_nothing(
    request_: SubmitRequest, field: str
) -> None:
    svc = service()
    with pytest.raises(ValidationError) as info:
        await svc.submit(request_)
    assert info.value.field == field
    assert sum((await svc.repository.count_by_status()).values()) == 0


async def test_unknown_types_are_rejected_listing_the_known_ones() -> None:
    with pytest.raises(UnknownTaskType) as info:
        await service().submit(SubmitRequest(type="fax", payload="x"))
    assert "data-export, email, image-resize" in str(info.value)


@pytest.mark.parametrize(
    ("task_type", "payload"),
    [
        ("email", "user@example.com"),
        ("email", {"to": "user@example.com", "subject": "hi"}),
        ("image-resize", "photo.jpg"),
        ("image-resize", {"image": "photo.jpg", "width": 100, "height": 80}),
        ("data-export", "users"),
        ("data-export", {"dataset": "users", "format": "json"}),
    ],
)
async def test_builtin_types_accept_the_original_and_the_object_payloads(
    task_type: str, payload: Any
) -> None:
    svc = service()
    task = await svc.submit(SubmitRequest(type=task_type, payload=payload))
    assert (await svc.get(task.id)).status is TaskStatus.PENDING
    assert (await svc.queue.depth()).visible == 1


async def test_a_delayed_task_records_when_it_will_run() -> None:
    svc = service()
    task = await svc.submit(SubmitRequest(type="email", payload="a@b.co", delay_seconds=60))
    assert task.run_at is not None
    assert (task.run_at - task.created_at).total_seconds() == 60
    assert (await svc.queue.depth()).delayed == 1


def test_registry_decorator_registers_sync_and_async_handlers() -> None:
    registry = HandlerRegistry()

    @registry.register("sync-type", timeout_seconds=5)
    def sync_handler(payload: Any) -> Any:
        return payload

    @registry.register("async-type")
    async def async_handler(payload: Any) -> Any:
        return payload

    assert registry.names() == ["async-type", "sync-type"]
    assert registry.get("sync-type").timeout_seconds == 5
    assert registry.get("async-type").is_async
    assert not registry.get("sync-type").is_async
    with pytest.raises(ValueError):
        registry.register("bad", timeout_seconds=0)(sync_handler)


async def test_run_at_schedules_a_task_and_is_validated() -> None:
    from datetime import timedelta

    svc = service()
    now = svc.clock.now()
    task = await svc.submit(
        SubmitRequest(type="email", payload="a@b.co", run_at=now + timedelta(days=30))
    )
    assert task.run_at == now + timedelta(days=30)
    assert (await svc.queue.depth()).total == 0, "held by the engine, not the queue"
    for bad in (
        SubmitRequest(type="email", payload="a@b.co", run_at=now + timedelta(days=400)),
        SubmitRequest(type="email", payload="a@b.co", run_at=now.replace(tzinfo=None)),
        SubmitRequest(type="email", payload="a@b.co", run_at=now, delay_seconds=5),
    ):
        with pytest.raises(ValidationError) as info:
            await svc.submit(bad)
        assert info.value.field == "run_at"


async def test_bulk_retry_of_failed_tasks_filters_by_type() -> None:
    svc = service()
    ids = {}
    for task_type, payload in (("email", "a@b.co"), ("data-export", "x"), ("email", "c@d.co")):
        task = await svc.submit(SubmitRequest(type=task_type, payload=payload))
        claimed = task.claim("l", svc.clock.now(), 30)
        await svc.repository.transition(claimed, expected=task)
        await svc.repository.transition(claimed.fail("boom", svc.clock.now()), expected=claimed)
        ids[task.id] = task_type
    retried = await svc.retry_failed(task_type="email", per_second=0)
    assert sorted(retried) == sorted(i for i, t in ids.items() if t == "email")
    counts = await svc.repository.count_by_status()
    assert (counts[TaskStatus.PENDING], counts[TaskStatus.FAILED]) == (2, 1)


async def test_idempotent_submission_returns_the_original_task() -> None:
    from domain.errors import IdempotencyKeyReused

    svc = service()
    request = SubmitRequest(type="email", payload="a@b.co")
    first, created = await svc.submit_idempotent(request, "order-42")
    again, created_again = await svc.submit_idempotent(request, "order-42")
    assert (created, created_again) == (True, False)
    assert again.id == first.id
    counts = await svc.repository.count_by_status()
    assert sum(counts.values()) == 1, "a repeat stores nothing"
    with pytest.raises(IdempotencyKeyReused):
        await svc.submit_idempotent(SubmitRequest(type="email", payload="x@y.co"), "order-42")
    with pytest.raises(ValidationError):
        await svc.submit_idempotent(request, "")


# -- strings a store can keep ------------------------------------------------------------


async def test_a_surrogate_pair_is_a_character_and_is_stored() -> None:
    svc = service()
    task = await svc.submit(
        SubmitRequest(type="email", payload={"to": "a@b.co", "n": "\U0001f600"})
    )
    assert (await svc.get(task.id)).payload == {"to": "a@b.co", "n": "\U0001f600"}


# -- batches -------------------------------------------------------------------------------

EMAIL = SubmitRequest(type="email", payload="a@b.co")


class FailingWrites(InMemoryTaskRepository):
    """Refuses to store the tasks whose payload is ``refused``."""

    def __init__(self, refused: Any) -> None:
        super().__init__()
        self.refused = refused

    async def add(self, task: Task) -> None:
        if task.payload == self.refused:
            raise InfrastructureError("repository", "disk full")
        await super().add(task)


async def stored(svc: TaskService) -> int:
    return sum((await svc.repository.count_by_status()).values())


async def test_a_batch_validates_every_item_before_storing_and_answers_each() -> None:
    svc = service()
    items: list[BatchEntry | ValidationError] = [
        BatchEntry(EMAIL),
        BatchEntry(SubmitRequest(type="email", payload={"to": "a@b.co", "x": "\ud800"})),
        ValidationError("max_attempts", "Input should be a valid integer"),
        BatchEntry(SubmitRequest(type="fax")),
        BatchEntry(SubmitRequest(type="email", payload="c@d.co")),
    ]

    outcomes = await svc.submit_batch(items)

    errors = [o.error.field if isinstance(o.error, ValidationError) else None for o in outcomes]
    assert errors == [None, "payload.x", "max_attempts", "type", None]
    created = [o.task for o in outcomes if o.task is not None]
    assert [t.payload for t in created] == ["a@b.co", "c@d.co"]
    assert await stored(svc) == 2
    assert (await svc.queue.depth()).visible == 2, "every stored due task has its message"


async def test_a_batch_holds_far_tasks_and_keys_idempotent_ones() -> None:
    svc = service()
    far = SubmitRequest(type="email", payload="a@b.co", delay_seconds=86400)

    outcomes = await svc.submit_batch(
        [BatchEntry(far), BatchEntry(EMAIL, "k"), BatchEntry(EMAIL, "k"), BatchEntry(EMAIL)]
    )

    assert [o.new for o in outcomes] == [True, True, False, True]
    assert outcomes[1].task is not None and outcomes[2].task is not None
    assert outcomes[1].task.id == outcomes[2].task.id
    assert await stored(svc) == 3
    depth = await svc.queue.depth()
    assert (depth.visible, depth.delayed) == (2, 0), "the far task is held, not queued"


async def test_a_failed_write_fails_only_its_item_and_the_others_are_sent() -> None:
    svc = service()
    svc.repository = FailingWrites(refused="x@y.co")
    items = [BatchEntry(EMAIL), BatchEntry(SubmitRequest(type="email", payload="x@y.co"))]

    outcomes = await svc.submit_batch([*items, BatchEntry(EMAIL)])

    assert isinstance(outcomes[1].error, InfrastructureError)
    assert outcomes[1].error.dependency == "repository"
    assert outcomes[0].task is not None and outcomes[2].task is not None
    assert await stored(svc) == 2
    assert (await svc.queue.depth()).visible == 2


class RefusingQueue(InMemoryTaskQueue):
    async def send_batch(self, items: Sequence[tuple[str, int]]) -> None:
        raise InfrastructureError("queue", "connection refused")


async def test_a_failed_send_names_each_stored_task() -> None:
    svc = service()
    svc.queue = RefusingQueue(ManualClock())
    outcomes = await svc.submit_batch([BatchEntry(EMAIL), BatchEntry(SubmitRequest(type=""))])

    assert isinstance(outcomes[0].error, QueueSendFailed)
    assert (await svc.get(outcomes[0].error.task_id)).status is TaskStatus.PENDING
    assert isinstance(outcomes[1].error, ValidationError)


@pytest.mark.parametrize("size", [0, MAX_BATCH_SIZE + 1])
async def test_a_batch_holds_1_to_the_limit(size: int) -> None:
    svc = service()
    with pytest.raises(ValidationError) as info:
        await svc.submit_batch([BatchEntry(EMAIL)] * size)
    assert info.value.field == "tasks"
    assert await stored(svc) == 0
