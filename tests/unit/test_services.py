"""Submit validation and the registry, on the in-memory adapters."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.clock import ManualClock
from adapters.handlers.builtin import register_builtins
from adapters.memory import InMemoryTaskQueue, InMemoryTaskRepository, InMemoryWorkerRegistry
from domain.errors import UnknownTaskType, ValidationError
from domain.models import TaskStatus
from domain.registry import HandlerRegistry
from domain.services import SubmitRequest, TaskService


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
