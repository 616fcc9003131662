"""The OpenAPI 3.1 document, generated from the app's routes.

Each handler documents itself beside its code (``operation.py``: ``@operation`` and its
docstring); the component schemas come from the pydantic models the handlers validate
and serialise with. What only the running server knows (its task types, its attempts
limit, its body limit) is filled in here. A unit test checks that the document names
exactly the routes served, and an OpenAPI validator that it is well formed.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from starlette.endpoints import HTTPEndpoint
from starlette.routing import BaseRoute, Route

from domain.task_types import TaskType
from entrypoints.http.auth import OPEN_PATHS
from entrypoints.http.errors import RETRY_AFTER_SECONDS
from entrypoints.http.openapi_task_types import type_results, typed_submit_body
from entrypoints.http.operation import TASK_ID, Answer, Operation, operation_of
from entrypoints.http.schemas import BatchItem, Error, SubmitTask, TaskOut


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _response(status: int, answer: Answer, links: dict[str, Any]) -> dict[str, Any]:
    model, description = (Error, answer) if isinstance(answer, str) else answer
    response: dict[str, Any] = {"description": description}
    response["content"] = {"application/json": {"schema": _ref(model)}}
    if status in (429, 503):
        wait = f"before retrying ({RETRY_AFTER_SECONDS})" if status == 503 else "until allowed"
        header = {"description": f"Seconds to wait {wait}.", "schema": {"type": "integer"}}
        response["headers"] = {"Retry-After": header}
    if model is TaskOut and links:
        response["links"] = links  # where the task's id leads: for clients and fuzzers
    return response


def _operations(routes: Sequence[BaseRoute]) -> Iterator[tuple[str, str, Operation]]:
    """Every (path, method, operation) the routes serve: one per handler."""
    for route in routes:
        if not isinstance(route, Route):
            continue
        if inspect.isclass(route.endpoint) and issubclass(route.endpoint, HTTPEndpoint):
            for method in ("get", "put", "post", "delete", "patch"):
                if hasattr(route.endpoint, method):
                    yield route.path, method, operation_of(getattr(route.endpoint, method))
            continue
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                yield route.path, method.lower(), operation_of(route.endpoint)


def _operation(
    path: str,
    op: Operation,
    max_body_bytes: int,
    links: dict[str, Any],
    bodies: dict[type[BaseModel], dict[str, Any]],
) -> dict[str, Any]:
    summary, _, description = op.doc.partition("\n\n")
    spec: dict[str, Any] = {"operationId": op.id, "summary": summary.strip()}
    if description.strip():
        spec["description"] = description.strip()
    if op.params:
        spec["parameters"] = [param.spec() for param in op.params]
    responses = dict(op.responses)
    if op.body is not None:
        content = {"application/json": {"schema": bodies.get(op.body) or _ref(op.body)}}
        spec["requestBody"] = {"required": op.body_required, "content": content}
        responses[400] = "The body is not JSON, or not a JSON object."
        responses[413] = f"The body is over {max_body_bytes} bytes."
    if path in OPEN_PATHS:
        spec["security"] = []
    else:
        responses[401] = "No API key was sent (when keys are configured)."
        responses[403] = "The API key is not valid."
        responses[429] = "The API key's rate limit, or the failed-key limit, is exceeded."
    spec["responses"] = {str(s): _response(s, a, links) for s, a in sorted(responses.items())}
    return spec


def _models(operations: Sequence[Operation]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    # Error answers every failure; BatchItem is referenced from SubmitBatch.tasks' items.
    modes: dict[type[BaseModel], JsonSchemaMode] = {Error: "serialization", BatchItem: "validation"}
    for op in operations:
        if op.body is not None:
            modes[op.body] = "validation"
        for answer in op.responses.values():
            if not isinstance(answer, str):
                modes[answer[0]] = "serialization"
    return list(modes.items())


def _server_limits(schemas: dict[str, Any], task_types: Sequence[str], max_attempts: int) -> None:
    for name in ("SubmitTask", "BatchItem"):
        properties = schemas[name]["properties"]
        properties["type"]["enum"] = sorted(task_types)
        properties["type"]["description"] += f" Registered on this server: {', '.join(task_types)}."
    for name in ("SubmitTask", "BatchItem", "RetryTask"):
        schemas[name]["properties"]["max_attempts"]["maximum"] = max_attempts


def build_openapi(
    routes: Sequence[BaseRoute],
    *,
    task_types: Sequence[TaskType],
    max_attempts: int,
    max_body_bytes: int,
) -> dict[str, Any]:
    operations = list(_operations(routes))
    models = _models([op for _, _, op in operations])
    _, top = models_json_schema(models, ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = top["$defs"]
    _server_limits(schemas, [t.name for t in task_types], max_attempts)
    # The typed forms of a submission and of a result, from the types' own schemas.
    bodies: dict[type[BaseModel], dict[str, Any]] = {}
    if task_types:
        bodies[SubmitTask] = typed_submit_body(schemas, task_types)
    type_results(schemas, task_types)
    links = {
        op.id: {"operationId": op.id, "parameters": {"task_id": "$response.body#/id"}}
        for _, _, op in operations
        if TASK_ID in op.params
    }
    paths: dict[str, dict[str, Any]] = {}
    for path, method, op in operations:
        spec = _operation(path, op, max_body_bytes, links, bodies)
        paths.setdefault(path, {})[method] = spec
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Task Queue Engine",
            "version": "0.1.0",
            "description": (
                "Submit tasks, follow them, page through them by status. Errors are "
                '`{"error": "..."}` naming the offending field. Unknown fields in a request '
                "body are refused (422). Strings must be valid Unicode (no lone surrogates). "
                "When the server has API keys configured, every path but /health and /ready "
                "needs one, as `Authorization: Bearer <key>` or `X-API-Key: <key>`."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}],
    }
