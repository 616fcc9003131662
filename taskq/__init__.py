"""taskq: the public Python API of Task Queue Engine.

The one import users need: the ``task`` decorator that defines typed task types,
``TaskContext``, and the typed HTTP clients (``Client``, ``AsyncClient``) with their
handles, answers and errors. Importing it imports nothing from the engine's internal
packages.
"""

from __future__ import annotations

from taskq.async_client import AsyncClient
from taskq.client import Client
from taskq.context import TaskContext
from taskq.definition import TaskDefinition, definition_of
from taskq.errors import (
    APIError,
    BadRequest,
    Conflict,
    Forbidden,
    InvalidBaseURL,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ResultTimeout,
    RetryableError,
    ServerError,
    ServerUnreachable,
    TaskCancelled,
    TaskFailed,
    TaskqError,
    Unauthorized,
    Unavailable,
)
from taskq.handles import SyncTaskHandle, TaskHandle
from taskq.models import (
    BatchResult,
    NewTask,
    ScheduleOptions,
    SubmitOptions,
    TaskInfo,
    TaskPage,
    TaskStatus,
)
from taskq.retry import RetryPolicy, Timing
from taskq.tasks import TypedTask, task

__all__ = [
    "APIError",
    "AsyncClient",
    "BadRequest",
    "BatchResult",
    "Client",
    "Conflict",
    "Forbidden",
    "InvalidBaseURL",
    "InvalidRequest",
    "NewTask",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "ResultTimeout",
    "RetryPolicy",
    "RetryableError",
    "ScheduleOptions",
    "ServerError",
    "ServerUnreachable",
    "SubmitOptions",
    "SyncTaskHandle",
    "TaskCancelled",
    "TaskContext",
    "TaskDefinition",
    "TaskFailed",
    "TaskHandle",
    "TaskInfo",
    "TaskPage",
    "TaskStatus",
    "TaskqError",
    "Timing",
    "TypedTask",
    "Unauthorized",
    "Unavailable",
    "definition_of",
    "task",
]
