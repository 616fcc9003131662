"""The OpenAPI 3.1 document of the API.

Component schemas are generated from the pydantic models in ``schemas.py`` (the ones
the handlers validate and serialise with); paths are written out here. A unit test
checks that every route of the app is documented and every documented path is served.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from domain.models import TaskStatus
from domain.services import DEFAULT_PAGE_SIZE, MAX_IDEMPOTENCY_KEY_LENGTH, MAX_PAGE_SIZE
from entrypoints.http.auth import OPEN_PATHS
from entrypoints.http.errors import RETRY_AFTER_SECONDS
from entrypoints.http.schemas import (
    MAX_BATCH_SIZE,
    BatchItem,
    BatchResults,
    DeadLetterPage,
    Error,
    Health,
    Metrics,
    Readiness,
    Redrive,
    Redriven,
    RetryTask,
    SubmitBatch,
    SubmitTask,
    TaskOut,
    TaskPage,
    Workers,
)

_MODELS: list[tuple[type[BaseModel], JsonSchemaMode]] = [
    (SubmitTask, "validation"),
    (SubmitBatch, "validation"),
    (BatchItem, "validation"),
    (BatchResults, "serialization"),
    (RetryTask, "validation"),
    (Redrive, "validation"),
    (Redriven, "serialization"),
    (DeadLetterPage, "serialization"),
    (TaskOut, "serialization"),
    (TaskPage, "serialization"),
    (Metrics, "serialization"),
    (Workers, "serialization"),
    (Health, "serialization"),
    (Readiness, "serialization"),
    (Error, "serialization"),
]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _error(description: str) -> dict[str, Any]:
    return _json("Error", description)


def _unavailable(description: str) -> dict[str, Any]:
    response = _error(description)
    response["headers"] = {
        "Retry-After": {
            "description": f"Seconds to wait before retrying ({RETRY_AFTER_SECONDS}).",
            "schema": {"type": "integer"},
        }
    }
    return response


def _secure(paths: dict[str, Any]) -> None:
    """Add the answers of the auth middleware to every operation that needs a key."""
    for path, operations in paths.items():
        for operation in operations.values():
            if path in OPEN_PATHS:
                operation["security"] = []
                continue
            operation["responses"].update(
                {
                    "401": _error("No API key was sent (when keys are configured)."),
                    "403": _error("The API key is not valid."),
                    "429": {
                        **_error("The API key's rate limit is exceeded."),
                        "headers": {
                            "Retry-After": {
                                "description": "Seconds until a request is allowed.",
                                "schema": {"type": "integer"},
                            }
                        },
                    },
                }
            )


def build_openapi(*, task_types: Sequence[str], max_body_bytes: int) -> dict[str, Any]:
    _, top = models_json_schema(_MODELS, ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = top["$defs"]
    schemas["SubmitTask"]["properties"]["type"]["description"] += (
        f" Registered on this server: {', '.join(task_types)}."
    )
    statuses = [s.value for s in TaskStatus]
    limit = {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_PAGE_SIZE,
            "default": DEFAULT_PAGE_SIZE,
        },
    }
    cursor = {
        "name": "cursor",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "`next_cursor` of the previous page.",
    }
    task_id = {
        "name": "task_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "format": "uuid"},
    }
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Task Queue Engine",
            "version": "0.1.0",
            "description": (
                "Submit tasks, follow them, page through them by status. Errors are "
                '`{"error": "..."}` naming the offending field. Request bodies over '
                f"{max_body_bytes} bytes are refused with 413. Unknown fields in a "
                "submitted task are ignored. When the server has API keys configured, "
                "every path but /health and /ready needs one, as `Authorization: Bearer "
                "<key>` or `X-API-Key: <key>`; a per-key rate limit answers 429."
            ),
        },
        "paths": {
            "/tasks": {
                "post": {
                    "operationId": "submitTask",
                    "summary": "Submit a task",
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {
                                "type": "string",
                                "minLength": 1,
                                "maxLength": MAX_IDEMPOTENCY_KEY_LENGTH,
                            },
                            "description": (
                                "Submit at most once per key (per API key), for "
                                "TASKQ_IDEMPOTENCY_WINDOW_SECONDS (default 24 hours): "
                                "the same key with the same body answers 200 with the task "
                                "it created; with a different body, 409. Concurrent "
                                "duplicates create one task."
                            ),
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("SubmitTask")}},
                    },
                    "responses": {
                        "200": _json("TaskOut", "The task this Idempotency-Key already created."),
                        "201": _json("TaskOut", "Stored (PENDING) and enqueued."),
                        "400": _error("The body is not JSON, or not a JSON object."),
                        "409": _error(
                            "The Idempotency-Key was used with a different body, or a "
                            "conflicting write (the task id is already in use)."
                        ),
                        "413": _error(f"The body is over {max_body_bytes} bytes."),
                        "422": _error(
                            "Failed validation: missing or empty type, unknown type, "
                            "bad payload, out-of-range options."
                        ),
                        "503": _unavailable(
                            "A dependency is down; the task was not created: submit it again later."
                        ),
                    },
                },
                "get": {
                    "operationId": "listTasks",
                    "summary": "List tasks with a status, newest first",
                    "parameters": [
                        {
                            "name": "status",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "string", "enum": statuses},
                            "description": "Case-insensitive.",
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": MAX_PAGE_SIZE,
                                "default": DEFAULT_PAGE_SIZE,
                            },
                        },
                        {
                            "name": "cursor",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string"},
                            "description": "`next_cursor` of the previous page.",
                        },
                    ],
                    "responses": {
                        "200": _json("TaskPage", "One page of tasks."),
                        "422": _error("Missing or invalid status, limit or cursor."),
                        "503": _unavailable("The task store is unavailable."),
                    },
                },
            },
            "/tasks/batch": {
                "post": {
                    "operationId": "submitTasks",
                    "summary": f"Submit 1 to {MAX_BATCH_SIZE} tasks, one result per task",
                    "description": (
                        "Each task is validated on its own: valid tasks are created even when "
                        "others are not. `results` has one entry per task, in input order, "
                        "with the status `POST /tasks` would have answered for it (201 with "
                        "`task`, or an error). The tasks due now are sent to the queue in "
                        "batches. A 503 item was not created: submit it again later."
                    ),
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("SubmitBatch")}},
                    },
                    "responses": {
                        "200": _json("BatchResults", "One result per task, in input order."),
                        "400": _error("The body is not JSON, or not a JSON object."),
                        "413": _error(f"The body is over {max_body_bytes} bytes."),
                        "422": _error(
                            f"`tasks` is missing, not an array, or has more than "
                            f"{MAX_BATCH_SIZE} (or no) items. Invalid items are reported in "
                            "their result instead."
                        ),
                    },
                }
            },
            "/tasks/{task_id}": {
                "get": {
                    "operationId": "getTask",
                    "summary": "One task",
                    "parameters": [task_id],
                    "responses": {
                        "200": _json("TaskOut", "The task."),
                        "404": _error("No task has this id (or it is not a UUID)."),
                        "503": _unavailable("The task store is unavailable."),
                    },
                }
            },
            "/tasks/{task_id}/cancel": {
                "post": {
                    "operationId": "cancelTask",
                    "summary": "Cancel a task",
                    "description": (
                        "A PENDING (or delayed) task becomes CANCELLED and never runs. A "
                        "PROCESSING task is flagged (`cancel_requested`): its worker cancels "
                        "the handler cooperatively and the task ends CANCELLED. Cancelling "
                        "twice answers the same."
                    ),
                    "parameters": [task_id],
                    "responses": {
                        "200": _json("TaskOut", "CANCELLED, or PROCESSING with cancel_requested."),
                        "404": _error("No task has this id (or it is not a UUID)."),
                        "409": _error("The task is finished; the error names its status."),
                        "503": _unavailable("The task store is unavailable."),
                    },
                }
            },
            "/tasks/{task_id}/retry": {
                "post": {
                    "operationId": "retryTask",
                    "summary": "Retry a FAILED task",
                    "description": (
                        "The task goes back to PENDING with a new attempt budget and is "
                        "enqueued; its attempts so far and its last error are kept."
                    ),
                    "parameters": [task_id],
                    "requestBody": {
                        "required": False,
                        "content": {"application/json": {"schema": _ref("RetryTask")}},
                    },
                    "responses": {
                        "200": _json("TaskOut", "The task, PENDING again."),
                        "400": _error("The body is not JSON, or not a JSON object."),
                        "404": _error("No task has this id (or it is not a UUID)."),
                        "409": _error("The task is not FAILED; the error names its status."),
                        "422": _error("max_attempts is not an integer in range."),
                        "503": _unavailable(
                            "A dependency is down; the task is unchanged (still FAILED)."
                        ),
                    },
                }
            },
            "/dead-letters": {
                "get": {
                    "operationId": "listDeadLetters",
                    "summary": "FAILED tasks (attempts and last error), newest first",
                    "description": (
                        "A task that used up its attempts (or failed permanently) is FAILED "
                        "and its message went to the dead-letter queue. "
                        "`dead_letter_queue_depth` counts the messages there, poison messages "
                        "(with no readable task) included."
                    ),
                    "parameters": [limit, cursor],
                    "responses": {
                        "200": _json("DeadLetterPage", "One page of FAILED tasks."),
                        "422": _error("Invalid limit or cursor."),
                        "503": _unavailable("A dependency is unavailable."),
                    },
                }
            },
            "/dead-letters/redrive": {
                "post": {
                    "operationId": "redrive",
                    "summary": "Retry FAILED tasks, all or of one type, at a bounded rate",
                    "description": (
                        "Each FAILED task (of `type` if given; up to `limit`) is retried as by "
                        "`POST /tasks/{task_id}/retry` with the default budget, at most "
                        "`per_second` a second, so the answer of a large redrive takes a while. "
                        "It works on FAILED tasks: messages in the queue's dead-letter queue "
                        "are not moved (a FAILED task's message is no longer needed; the retry "
                        "sends a new one)."
                    ),
                    "requestBody": {
                        "required": False,
                        "content": {"application/json": {"schema": _ref("Redrive")}},
                    },
                    "responses": {
                        "200": _json("Redriven", "The ids of the tasks retried."),
                        "400": _error("The body is not JSON, or not a JSON object."),
                        "422": _error("Invalid type, limit or per_second."),
                        "503": _unavailable(
                            "A dependency failed part way: the tasks retried so far stay "
                            "retried; send the request again for the rest."
                        ),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Counts per status, queue depth, live workers",
                    "responses": {
                        "200": _json("Metrics", "A snapshot."),
                        "503": _unavailable("A dependency is unavailable."),
                    },
                }
            },
            "/workers": {
                "get": {
                    "operationId": "workers",
                    "summary": "The workers alive now, in every process, with their load",
                    "responses": {
                        "200": _json("Workers", "Live workers."),
                        "503": _unavailable("A dependency is unavailable."),
                    },
                }
            },
            "/health": {
                "get": {
                    "operationId": "health",
                    "summary": "Liveness: the process answers (no dependency is called)",
                    "responses": {"200": _json("Health", "Alive.")},
                }
            },
            "/ready": {
                "get": {
                    "operationId": "ready",
                    "summary": "Readiness: the task store and the queue answer",
                    "responses": {
                        "200": _json("Readiness", "Every dependency answered."),
                        "503": _json("Readiness", "A dependency failed; `checks` names it."),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}],
    }
    _secure(document["paths"])
    return document
