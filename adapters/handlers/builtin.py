"""Built-in task types of the original service: ``email`` (adapters/handlers/email.py:
real), ``image-resize``, ``data-export`` (simulated for now; payloads are validated for
real).

Existing clients send a string payload (an address, an image name, an export name);
an object with the documented fields is accepted too.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from adapters.handlers.email import email_task_type
from domain.models import JSON
from domain.ports import EmailSender
from domain.task_types import HandlerRegistry, TaskType

SIMULATED_WORK_SECONDS = 0.01
_FORMATS = ("csv", "json", "ndjson")
_MAX_SIDE = 20000

# JSON Schemas of what the validators below accept and the handlers return (shown by
# GET /task-types and in /openapi.json): a name as a string, or an object.
_NAME = {"type": "string", "pattern": r"\S"}
_SIDE = {"type": "integer", "minimum": 1, "maximum": _MAX_SIDE}
IMAGE_RESIZE_INPUT: dict[str, JSON] = {
    "anyOf": [
        {**_NAME, "description": "The image's name."},
        {
            "type": "object",
            "properties": {"image": _NAME, "width": _SIDE, "height": _SIDE},
            "required": ["image", "width", "height"],
        },
    ]
}
DATA_EXPORT_INPUT: dict[str, JSON] = {
    "anyOf": [
        {**_NAME, "description": "The dataset's name (exported as CSV)."},
        {
            "type": "object",
            "properties": {
                "dataset": _NAME,
                "format": {"type": "string", "enum": list(_FORMATS), "default": "csv"},
            },
            "required": ["dataset"],
        },
    ]
}
IMAGE_RESIZE_OUTPUT: dict[str, JSON] = {
    "type": "object",
    "properties": {
        "image": {"type": "string"},
        "size": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
    },
    "required": ["image"],
}
DATA_EXPORT_OUTPUT: dict[str, JSON] = {
    "type": "object",
    "properties": {"export": {"type": "string"}},
    "required": ["export"],
}


def _field(payload: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    if name not in payload:
        raise ValueError(f"missing field {name!r}")
    value = payload[name]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(f"field {name!r} has the wrong type")
    return value


def _name_or_object(payload: JSON, name: str, fields: str) -> dict[str, JSON] | None:
    """The object ``payload`` is; None if it is a name (a non-empty string) instead."""
    if isinstance(payload, str):
        if not payload.strip():
            raise ValueError(f"expected {name}")
        return None
    if not isinstance(payload, dict):
        raise ValueError(f"expected {name}, or an object with {fields}")
    return payload


def validate_image_resize(payload: JSON) -> None:
    fields = _name_or_object(payload, "an image name", "'image', 'width', 'height'")
    if fields is None:
        return
    image = _field(fields, "image", str)
    if not image.strip():
        raise ValueError("field 'image' must not be empty")
    for side in ("width", "height"):
        value = _field(fields, side, int)
        if not 1 <= value <= _MAX_SIDE:
            raise ValueError(f"field {side!r} must be between 1 and {_MAX_SIDE}")


def validate_data_export(payload: JSON) -> None:
    fields = _name_or_object(payload, "an export name", "'dataset'")
    if fields is None:
        return
    if not _field(fields, "dataset", str).strip():
        raise ValueError("field 'dataset' must not be empty")
    fmt = fields.get("format", "csv")
    if fmt not in _FORMATS:
        raise ValueError(f"field 'format' must be one of {', '.join(_FORMATS)}")


async def resize_image(payload: JSON) -> JSON:
    await asyncio.sleep(SIMULATED_WORK_SECONDS)
    if isinstance(payload, dict):
        return {"image": payload["image"], "size": [payload["width"], payload["height"]]}
    return {"image": payload}


async def export_data(payload: JSON) -> JSON:
    await asyncio.sleep(SIMULATED_WORK_SECONDS)
    name = payload["dataset"] if isinstance(payload, dict) else payload
    fmt = payload.get("format", "csv") if isinstance(payload, dict) else "csv"
    return {"export": f"{name}.{fmt}"}


def register_builtins(
    task_types: HandlerRegistry, *, mail: EmailSender | None = None
) -> HandlerRegistry:
    """Add the built-in types to ``task_types``; ``mail`` sends the emails (None: an
    email task fails, saying that no sender is wired)."""
    resize = TaskType("image-resize", resize_image, 300.0, validate_image_resize)
    export = TaskType("data-export", export_data, 900.0, validate_data_export)
    task_types.add(email_task_type(mail))
    task_types.add(
        replace(resize, input_schema=IMAGE_RESIZE_INPUT, output_schema=IMAGE_RESIZE_OUTPUT)
    )
    task_types.add(
        replace(export, input_schema=DATA_EXPORT_INPUT, output_schema=DATA_EXPORT_OUTPUT)
    )
    return task_types
