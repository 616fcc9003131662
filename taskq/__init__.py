"""taskq: the public Python API of Task Queue Engine.

The one import users need: the ``task`` decorator that defines typed task types,
``TaskContext``, and (with the client) a typed HTTP client. Importing it imports nothing
from the engine's internal packages.
"""

from __future__ import annotations

from taskq.context import TaskContext
from taskq.definition import TaskDefinition, definition_of
from taskq.tasks import TypedTask, task

__all__ = ["TaskContext", "TaskDefinition", "TypedTask", "definition_of", "task"]
