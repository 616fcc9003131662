"""HandlerRegistry: the task types a process knows, registered by decorator."""

from __future__ import annotations

from typing import Any

import pytest

from domain.task_types import HandlerRegistry


def test_the_register_decorator_adds_sync_and_async_handlers_with_their_timeouts() -> None:
    task_types = HandlerRegistry()

    @task_types.register("sync-type", timeout_seconds=5)
    def sync_handler(payload: Any) -> Any:
        return payload

    @task_types.register("async-type")
    async def async_handler(payload: Any) -> Any:
        return payload

    assert task_types.names() == ["async-type", "sync-type"]
    assert task_types.get("sync-type").timeout_seconds == 5
    assert task_types.get("async-type").is_async
    assert not task_types.get("sync-type").is_async
    with pytest.raises(ValueError):
        task_types.register("bad", timeout_seconds=0)(sync_handler)


def test_the_former_module_path_still_registers_into_the_same_task_types() -> None:
    from domain import registry as former
    from domain import task_types

    assert former.task_type is task_types.task_type
    assert former.HandlerRegistry is task_types.HandlerRegistry
    assert former.default_registry is task_types.default_task_types
