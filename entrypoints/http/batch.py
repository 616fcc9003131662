"""``POST /tasks/batch``: many submissions in one request, one result per item.

Each item is validated on its own, so valid items are created even when others are
not. The valid items that are due within the queue's delay horizon are stored and sent
with one ``TaskService.submit_many`` call (one batched send); items the engine holds
(due later) are only stored, one by one, and so are items with an idempotency key,
through the idempotent submit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pydantic

from domain.errors import (
    ConcurrencyConflict,
    IdempotencyKeyReused,
    InfrastructureError,
    QueueSendFailed,
    TaskAlreadyExists,
    TaskQueueError,
    ValidationError,
)
from domain.models import Task
from domain.services import SubmitRequest, TaskService
from entrypoints.http.errors import pydantic_message
from entrypoints.http.parsing import idempotency_key
from entrypoints.http.schemas import MAX_BATCH_SIZE, BatchItem, BatchResult, TaskOut


@dataclass(frozen=True)
class _Valid:
    index: int
    request: SubmitRequest
    held: bool
    idempotency_key: str | None


def created(task: Task, *, new: bool = True) -> BatchResult:
    return BatchResult(status=201 if new else 200, task=TaskOut.of(task))


def failure(exc: TaskQueueError) -> BatchResult:
    """One item's domain error as its result (the statuses of the single endpoints)."""
    if isinstance(exc, QueueSendFailed):
        return BatchResult(
            status=503,
            error="the queue is unavailable: the task could not be enqueued, so it was not "
            "created; submit it again later",
        )
    if isinstance(exc, InfrastructureError):
        return BatchResult(
            status=503,
            error=f"{exc.dependency} unavailable, retry later",
        )
    if isinstance(exc, ValidationError):
        return BatchResult(status=422, error=f"{exc.field}: {exc.message}")
    if isinstance(exc, TaskAlreadyExists | ConcurrencyConflict | IdempotencyKeyReused):
        return BatchResult(status=409, error=str(exc))
    raise exc  # anything else is a bug: the catch-all answers 500


class BatchSubmit:
    def __init__(
        self,
        service: TaskService,
        to_request: Callable[[BatchItem], SubmitRequest],
        caller: str,
    ) -> None:
        self._service = service
        self._to_request = to_request
        self._caller = caller

    async def __call__(self, items: Sequence[Any]) -> list[BatchResult]:
        if not 1 <= len(items) <= MAX_BATCH_SIZE:
            raise ValidationError(
                "tasks", f"must hold 1 to {MAX_BATCH_SIZE} tasks, not {len(items)}"
            )
        results: list[BatchResult | None] = [None] * len(items)
        valid: list[_Valid] = []
        for index, raw in enumerate(items):
            checked = self._check(index, raw)
            if isinstance(checked, BatchResult):
                results[index] = checked
            else:
                valid.append(checked)

        for item in valid:
            if item.held or item.idempotency_key is not None:
                results[item.index] = await self._one(item)
        due = [item for item in valid if not item.held and item.idempotency_key is None]
        for item, result in zip(due, await self._many(due), strict=True):
            results[item.index] = result

        assert all(result is not None for result in results)
        return [result for result in results if result is not None]

    def _check(self, index: int, raw: Any) -> _Valid | BatchResult:
        if not isinstance(raw, dict):
            return BatchResult(status=422, error="body: each task must be a JSON object")
        try:
            item = BatchItem.model_validate(raw)
            request = self._to_request(item)
            key = None
            if item.idempotency_key is not None:
                key = idempotency_key("idempotency_key", item.idempotency_key, self._caller)
            # Validates like a submit would; the task it builds is thrown away.
            _, delay = self._service.build(request)
        except pydantic.ValidationError as exc:
            return BatchResult(status=422, error=pydantic_message(exc))
        except ValidationError as exc:
            return failure(exc)
        return _Valid(index, request, delay is None, key)

    async def _one(self, item: _Valid) -> BatchResult:
        try:
            if item.idempotency_key is not None:
                task, new = await self._service.submit_idempotent(
                    item.request, item.idempotency_key
                )
                return created(task, new=new)
            return created(await self._service.submit(item.request))
        except TaskQueueError as exc:
            return failure(exc)

    async def _many(self, due: list[_Valid]) -> list[BatchResult]:
        if not due:
            return []
        try:
            outcome = await self._service.submit_many_outcome([item.request for item in due])
        except InfrastructureError as exc:  # the store failed: nothing is known stored
            return [failure(exc) for _ in due]
        return [
            failure(QueueSendFailed(task.id, outcome.detail or "send failed"))
            if task.id in outcome.unsent
            else created(task)
            for task in outcome.tasks
        ]
