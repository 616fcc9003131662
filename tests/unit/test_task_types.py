"""HandlerRegistry: the task types a process knows, registered by decorator."""

from __future__ import annotations

from typing import Any

import pytest

from domain.task_types import HandlerRegistry


def test_the_register_decorator_adds_sync_and_async_handlers_with_their_timeouts() -> None:
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


def test_the_former_module_path_still_registers_into_the_same_task_types() -> None:
    from domain import registry, task_types

    assert registry.task_type is task_types.task_type
    assert registry.HandlerRegistry is task_types.HandlerRegistry
    assert registry.default_registry is task_types.default_task_types
