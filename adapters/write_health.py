"""A decorator over any port that reports the outcome of its write methods to a
``WriteHealth`` (readiness from the writes the service makes anyway).

A write that raises ``InfrastructureError`` failed; one that returns, or raises another
engine error (a lost race, an existing id: the store answered), succeeded. Every other
attribute is the wrapped adapter's own, so the decorator keeps whatever methods the port
gains.
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from typing import Any

from domain.errors import InfrastructureError, TaskQueueError
from domain.health import WriteHealth

REPOSITORY_WRITES = frozenset({"add", "add_idempotent", "transition"})
QUEUE_WRITES = frozenset({"send", "send_batch"})
"""Sends are what accepting a task needs; settling messages is the workers' business
and fails loudly there."""


class WriteTracking:
    def __init__(
        self, inner: Any, health: WriteHealth, dependency: str, writes: Collection[str]
    ) -> None:
        self._inner = inner
        self._health = health
        self._dependency = dependency
        self._writes = frozenset(writes)

    @property
    def inner(self) -> Any:
        """The adapter this decorates."""
        return self._inner

    def __getattr__(self, name: str) -> Any:
        """The inner adapter's attribute; a write method wrapped to report its outcome.
        A method is looked up (and wrapped) once: it is kept on this instance, so the
        calls after the first, on every task's path, go to it directly."""
        attribute = getattr(self._inner, name)
        if not callable(attribute):
            return attribute  # data may change on the adapter: never kept here
        method = self._tracked(attribute) if name in self._writes else attribute
        setattr(self, name, method)
        return method

    def _tracked(self, attribute: Any) -> Any:
        health, dependency = self._health, self._dependency

        @functools.wraps(attribute)
        async def tracked(*args: Any, **kwargs: Any) -> Any:
            try:
                result = await attribute(*args, **kwargs)
            except InfrastructureError as exc:
                health.failed(dependency, exc.detail)
                raise
            except TaskQueueError:
                health.succeeded(dependency)
                raise
            health.succeeded(dependency)
            return result

        return tracked
